/** Stable codes of the errors `@backplane/messaging` throws. */
export type MessagingErrorCode =
  | 'MESSAGING_INVALID_OPTIONS'
  | 'MESSAGING_INVALID_URL'
  | 'MESSAGING_INVALID_MESSAGE'
  | 'MESSAGING_CLIENT_MISSING'
  | 'MESSAGING_CLIENT_UNSUPPORTED'
  | 'MESSAGING_UNSUPPORTED'
  | 'MESSAGING_PUBLISH_FAILED'
  | 'MESSAGING_SUBSCRIBE_FAILED'
  | 'MESSAGING_CONNECTION_FAILED'
  | 'MESSAGING_TIMEOUT'
  | 'MESSAGING_CLOSED'

const brand = Symbol.for('@backplane/messaging/MessagingError')

/** Every error this package throws. `code` is stable; `details` says field by field what was wrong. */
export class MessagingError extends Error {
  override readonly name = 'MessagingError'
  readonly code: MessagingErrorCode
  readonly details: readonly string[]
  readonly [brand] = true

  constructor(code: MessagingErrorCode, message: string, options?: { details?: string[]; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options?.details ?? []
  }

  /** True for a MessagingError from any installed copy of this package. */
  static is(value: unknown): value is MessagingError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
  }
}

const nonRetryable = Symbol.for('@backplane/messaging/NonRetryableError')

/**
 * Thrown by a handler to send the message to the dead-letter topic at once, without retries:
 * for failures that another attempt cannot fix (a malformed order, a business rule).
 */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError'
  readonly [nonRetryable] = true

  static is(value: unknown): value is NonRetryableError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[nonRetryable] === true
  }
}

const retryAfter = Symbol.for('@backplane/messaging/RetryAfterError')

/**
 * Thrown by a handler that knows when to try again (a 429 or 503 with Retry-After): the next
 * attempt waits `delayMs` instead of the backoff. It still counts against `maxAttempts`.
 */
export class RetryAfterError extends Error {
  override readonly name = 'RetryAfterError'
  readonly delayMs: number
  readonly [retryAfter] = true

  constructor(message: string, delayMs: number, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.delayMs = Math.max(0, delayMs)
  }

  static is(value: unknown): value is RetryAfterError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[retryAfter] === true
  }
}
