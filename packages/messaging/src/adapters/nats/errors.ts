import { MessagingError } from '@backplane/messaging'

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export function apiErrorCode(error: unknown): number | undefined {
  return (error as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code
}

export function natsCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

export const JS_ERR = {
  streamNameInUse: 10058,
  streamNotFound: 10059,
  subjectsOverlap: 10065,
  consumerNotFound: 10014,
} as const

export function publishError(error: unknown, topic: string, timeoutMs: number): MessagingError {
  if (MessagingError.is(error)) return error
  if (natsCode(error) === 'DISCONNECT') {
    return new MessagingError(
      'MESSAGING_PUBLISH_FAILED',
      `publish to ${topic}: the connection to NATS dropped before the server confirmed it; the message may be lost`,
      { cause: error },
    )
  }
  if (natsCode(error) === 'TIMEOUT') {
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
