import { brandError, hasBrand } from '@backplane/internal'
/** Stable codes of every error `@backplane/logging` throws. */
export type LoggingErrorCode =
  | 'LOGGING_INVALID_OPTIONS'
  | 'LOGGING_DIR_UNWRITABLE'
  | 'LOGGING_CLOSED'
  | 'LOGGING_LOGS_API_MISSING'

const BRAND = '@backplane/logging/LoggingError'

/**

 * The error createLogger and createRollingFile throw (searches throw SearchError). `code` is stable across releases; `details` lists what
 * was wrong (for invalid options: one entry per offending field).
 */
export class LoggingError extends Error {
  override readonly name = 'LoggingError'
  readonly code: LoggingErrorCode
  readonly details: readonly string[]

  constructor(code: LoggingErrorCode, message: string, options?: { details?: string[]; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.code = code
    this.details = options?.details ?? []
  }

  /** True for a LoggingError from any installed copy of this package. */
  static is(value: unknown): value is LoggingError {
    return hasBrand(value, BRAND)
  }
}
