import { MessagingError } from '@backplane/messaging'
import { JetStreamApiError } from '@nats-io/jetstream'
import { NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node'

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** JetStream's own error code (`err_code`, such as 10059 for "stream not found"), if the error carries one. */
export function apiErrorCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined
}

/**
 * No one answered on the subject: for a JetStream publish, no stream holds it (any more). nats.js
 * reports it as a NoRespondersError, wrapped in a RequestError, and js.publish wraps that once
 * more (in a JetStreamNotEnabled, which it does not export).
 */
export function isNoResponders(error: unknown): boolean {
  if (error instanceof NoRespondersError) return true
  if (error instanceof RequestError) return error.isNoResponders()
  return error instanceof Error && error.cause !== undefined && isNoResponders(error.cause)
}

export const JS_ERR = {
  streamNameInUse: 10058,
  streamNotFound: 10059,
  subjectsOverlap: 10065,
  consumerNotFound: 10014,
} as const

export function publishError(error: unknown, topic: string, timeoutMs: number): MessagingError {
  if (MessagingError.is(error)) return error
  // What nats.js rejects a flush with when the connection drops before the server answered it.
  if (error instanceof RequestError && /disconnected/.test(error.message)) {
    return new MessagingError(
      'MESSAGING_PUBLISH_FAILED',
      `publish to ${topic}: the connection to NATS dropped before the server confirmed it; the message may be lost`,
      { cause: error },
    )
  }
  if (error instanceof TimeoutError) {
    return new MessagingError(
      'MESSAGING_TIMEOUT',
      `publish to ${topic}: no acknowledgement from JetStream within ${timeoutMs} ms (server down or reconnecting?); the message may or may not be stored`,
      { cause: error },
    )
  }
  return new MessagingError('MESSAGING_PUBLISH_FAILED', `publish to ${topic} failed: ${errorText(error)}`, {
    cause: error,
  })
}

export function closedError(): MessagingError {
  return new MessagingError('MESSAGING_CLOSED', 'the NATS transport is closed')
}
