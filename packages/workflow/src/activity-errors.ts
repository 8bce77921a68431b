import { brandError, hasBrand, NON_RETRYABLE_BRAND } from '@backplane/internal'

const ACTIVITY_TIMEOUT_BRAND = '@backplane/workflow/ActivityTimeoutError'

/**
 * Thrown by an activity for a failure another attempt cannot fix (a declined card, a business
 * rule): the retries are skipped and the invoke's `onError` transition is taken at once.
 */
export class NonRetryableError extends Error {
  override readonly name: string = 'NonRetryableError'

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    // The brand @backplane/messaging's NonRetryableError carries too, so either class thrown from an
    // activity (or from a handler `engine.listen` calls) skips the retries.
    brandError(this, NON_RETRYABLE_BRAND)
  }

  /** True for a NonRetryableError of this package or of @backplane/messaging, from any installed copy. */
  static is(value: unknown): value is NonRetryableError {
    return hasBrand(value, NON_RETRYABLE_BRAND)
  }
}

/** The error an attempt fails with when it runs longer than its `timeout` (its `signal` is aborted too). */
export class ActivityTimeoutError extends Error {
  override readonly name = 'ActivityTimeoutError'
  readonly timeoutMs: number

  constructor(activity: string, timeoutMs: number) {
    super(`activity ${activity} timed out after ${timeoutMs} ms`)
    brandError(this, ACTIVITY_TIMEOUT_BRAND)
    this.timeoutMs = timeoutMs
  }

  /** True for an ActivityTimeoutError from any installed copy of this package. */
  static is(value: unknown): value is ActivityTimeoutError {
    return hasBrand(value, ACTIVITY_TIMEOUT_BRAND)
  }
}
