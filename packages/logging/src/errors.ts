/** Stable codes of every error `@backplane/logging` throws. */
export type LoggingErrorCode = 'LOGGING_INVALID_OPTIONS' | 'LOGGING_DIR_UNWRITABLE' | 'LOGGING_CLOSED'

const brand = Symbol.for('@backplane/logging/LoggingError')

/**

 * The error createLogger and createRollingFile throw (searches throw SearchError). `code` is stable across releases; `details` lists what
 * was wrong (for invalid options: one entry per offending field).
 */
export class LoggingError extends Error {
  override readonly name = 'LoggingError'
  readonly code: LoggingErrorCode
  readonly details: readonly string[]
  readonly [brand] = true

  constructor(code: LoggingErrorCode, message: string, options?: { details?: string[]; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options?.details ?? []
  }

  /** True for a LoggingError from any installed copy of this package. */
  static is(value: unknown): value is LoggingError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
  }
}
