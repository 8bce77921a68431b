import { MessagingError } from '@backplane/messaging'
import { BridgeError } from '../errors.js'

/** Subscribing failed: a refusal that another try will not change is the caller's to fix. */
export function subscribeFailure(error: unknown): BridgeError {
  if (BridgeError.is(error)) return error
  if (
    MessagingError.is(error) &&
    (error.code === 'MESSAGING_UNSUPPORTED' || error.code === 'MESSAGING_INVALID_OPTIONS')
  ) {
    return new BridgeError(400, 'INVALID_REQUEST', error.message, { details: error.details })
  }
  return new BridgeError(
    503,
    'BROKER_UNAVAILABLE',
    `the broker refused the subscription: ${(error as Error)?.message ?? error}`,
    {
      cause: error,
    },
  )
}
