// Shared with @backplane/messaging: its NonRetryableError carries the same brand, so either class
// thrown from an activity (or from a handler `engine.listen` calls) skips the retries.
const nonRetryable = Symbol.for('@backplane/messaging/NonRetryableError')

/**
 * Thrown by an activity for a failure another attempt cannot fix (a declined card, a business
 * rule): the retries are skipped and the invoke's `onError` transition is taken at once.
 */
export class NonRetryableError extends Error {
  override readonly name: string = 'NonRetryableError'
  readonly [nonRetryable] = true

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
  }

  /** True for a NonRetryableError of this package or of @backplane/messaging, from any installed copy. */
  static is(value: unknown): value is NonRetryableError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[nonRetryable] === true
  }
}

/** The error an attempt fails with when it runs longer than its `timeout` (its `signal` is aborted too). */
export class ActivityTimeoutError extends Error {
  override readonly name = 'ActivityTimeoutError'
  readonly timeoutMs: number

  constructor(activity: string, timeoutMs: number) {
    super(`activity ${activity} timed out after ${timeoutMs} ms`)
    this.timeoutMs = timeoutMs
  }
}
