import { brandError, type Duration, hasBrand, NON_RETRYABLE_BRAND, parseDuration } from '@backplane/internal'

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

const BRAND = '@backplane/messaging/MessagingError'

/** Every error this package throws. `code` is stable; `details` says field by field what was wrong. */
export class MessagingError extends Error {
  override readonly name = 'MessagingError'
  readonly code: MessagingErrorCode
  readonly details: readonly string[]

  constructor(code: MessagingErrorCode, message: string, options?: { details?: string[]; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.code = code
    this.details = options?.details ?? []
  }

  /** True for a MessagingError from any installed copy of this package. */
  static is(value: unknown): value is MessagingError {
    return hasBrand(value, BRAND)
  }
}

// The brand this package set before it shared NON_RETRYABLE_BRAND with @backplane/workflow:
// still set and still recognised, so older installed copies and this one understand each other.
const LEGACY_NON_RETRYABLE_BRAND = '@backplane/messaging/NonRetryableError'

/**
 * Thrown by a handler to send the message to the dead-letter topic at once, without retries:
 * for failures that another attempt cannot fix (a malformed order, a business rule).
 */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError'
  /**
   * What the dead letter's `backplane-dlq-reason` says: `non-retryable`, or `max-attempts` for a
   * handler that counts its attempts itself and has run out of them.
   */
  readonly reason: 'non-retryable' | 'max-attempts'

  constructor(message?: string, options?: ErrorOptions & { reason?: 'non-retryable' | 'max-attempts' }) {
    super(message, options)
    this.reason = options?.reason ?? 'non-retryable'
    brandError(this, NON_RETRYABLE_BRAND)
    brandError(this, LEGACY_NON_RETRYABLE_BRAND)
  }

  /** True for a NonRetryableError of any installed copy of this package or of @backplane/workflow. */
  static is(value: unknown): value is NonRetryableError {
    return hasBrand(value, NON_RETRYABLE_BRAND) || hasBrand(value, LEGACY_NON_RETRYABLE_BRAND)
  }
}

const RETRY_AFTER_BRAND = '@backplane/messaging/RetryAfterError'

/**
 * Thrown by a handler that knows when to try again (a 429 or 503 with Retry-After): the next
 * attempt waits `delay` (ms, or a duration string like "30s") instead of the backoff. It still
 * counts against `retry.maxAttempts`. A delay that is not a duration (negative, say) is 0.
 */
export class RetryAfterError extends Error {
  override readonly name = 'RetryAfterError'
  /** The delay in milliseconds. */
  readonly delayMs: number

  constructor(message: string, delay: Duration, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, RETRY_AFTER_BRAND)
    this.delayMs = parseDuration(delay) ?? 0
  }

  static is(value: unknown): value is RetryAfterError {
    return hasBrand(value, RETRY_AFTER_BRAND)
  }
}
