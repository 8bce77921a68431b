import { withTimeout as settleWithin } from '@backplane/internal'
import { MessagingError } from '@backplane/messaging'

/** Settles like `promise`, or fails with MESSAGING_TIMEOUT naming `what` after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return settleWithin(promise, ms, () => new MessagingError('MESSAGING_TIMEOUT', `${what}: no answer within ${ms} ms`))
}
