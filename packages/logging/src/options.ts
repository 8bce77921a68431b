import { durationSchema, parseWith } from '@backplane/internal'
import type { LoggerOptions } from 'pino'
import { z } from 'zod'
import { LoggingError } from './errors.js'
import { isValidInterval, parseSize } from './units.js'

const size = (what: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseSize(value)
    if (bytes === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid ${what} ${JSON.stringify(value)}: expected a positive size like "512K", "10M", "1G" or a number of bytes`,
      })
      return z.NEVER
    }
    return bytes
  })

const duration = durationSchema({ min: 1 })

const interval = z.string().refine(isValidInterval, {
  error: (issue) =>
    `invalid interval ${JSON.stringify(issue.input)}: expected "<n>M" (months), "<n>d" (days), or "<n>h", "<n>m", "<n>s" where n divides 24 hours, 60 minutes or 60 seconds evenly (e.g. "1d", "6h", "15m")`,
})

const fileNamePart = z
  .string()
  .min(1)
  .regex(/^[^/\\\0]+$/, 'must be a file name part without slashes')

export const rollingFileOptionsSchema = z.strictObject({
  /** Directory of the log files; created when missing. */
  dir: z.string().min(1),
  /** File name prefix; defaults to the service name. */
  name: fileNamePart.optional(),
  /** Roll when the current file reaches this size. */
  size: size('size').default(10 * 1024 ** 2),
  /** Roll at every interval boundary (UTC unless `utc: false`). */
  interval: interval.default('1d'),
  /** Compute interval boundaries in UTC (default) or in the process's local time zone. */
  utc: z.boolean().default(true),
  /** Keep at most this many files (the current one included), oldest removed first. */
  maxFiles: z.number().int().positive().optional(),
  /** Keep the files' total size on disk under this, oldest removed first. */
  maxSize: size('maxSize').optional(),
  /** Remove files whose last line is older than this. */
  maxAge: duration.optional(),
  /** Compress rolled files, in the background, off the write path. */
  compress: z.union([z.literal('gzip'), z.literal(false)]).default(false),
  /** zlib level for `compress: 'gzip'`: 1 is fastest (the default: logs compress well anyway), 9 smallest. */
  compressionLevel: z.number().int().min(1).max(9).default(1),
  /** File mode of new log files. */
  mode: z.number().int().nonnegative().optional(),
  /** Lines waiting for the disk above this size are dropped (counted and reported); default: no limit. */
  maxBufferSize: size('maxBufferSize').optional(),
})

export type RollingFileOptions = z.input<typeof rollingFileOptionsSchema>
export type ResolvedRollingFileOptions = z.output<typeof rollingFileOptionsSchema>

const levelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

export const loggerOptionsSchema = z.strictObject({
  /** `service.name` on every line, and the default file name. */
  service: z.string().min(1),
  level: levelSchema.default('info'),
  /** Write to rolling files in a directory; `false` or omitted writes to stdout only. */
  file: z.preprocess((value) => (value === false ? undefined : value), rollingFileOptionsSchema.optional()),
  /** Also write to stdout; default: only when no `file` is given. */
  stdout: z.boolean().optional(),
  /** Add `trace_id`, `span_id`, `trace_flags` of the active OpenTelemetry span to every line. */
  correlation: z.boolean().default(true),
  /**
   * Also hand every record to the OpenTelemetry Logs API (needs `@opentelemetry/api-logs`), so an
   * app whose SDK has a LoggerProvider ships them with their trace context. `loggerName` is the
   * records' instrumentation scope (default `@backplane/logging`).
   */
  openTelemetryLogs: z
    .union([z.boolean(), z.strictObject({ loggerName: z.string().min(1).optional() })])
    .default(false),
  /** Flush on SIGTERM/SIGINT and write what is still buffered when the process exits. */
  handleExit: z.boolean().default(true),
  redact: z
    .union([
      z.array(z.string()),
      z.strictObject({ paths: z.array(z.string()), censor: z.unknown().optional(), remove: z.boolean().optional() }),
    ])
    .optional(),
  /** Extra fields on every line (pino `base`, merged with pid, hostname and `service.name`). */
  base: z.record(z.string(), z.unknown()).optional(),
  serializers: z.record(z.string(), z.function()).optional(),
  /** Any other pino option, passed through as is. */
  pino: z.record(z.string(), z.unknown()).optional(),
})

export type CreateLoggerOptions = Omit<
  z.input<typeof loggerOptionsSchema>,
  'pino' | 'serializers' | 'redact' | 'file'
> & {
  /** Write to rolling files in a directory; `false` or omitted writes to stdout only. */
  file?: RollingFileOptions | false | undefined
  redact?: LoggerOptions['redact']
  serializers?: LoggerOptions['serializers']
  pino?: Omit<LoggerOptions, 'level' | 'base' | 'redact' | 'serializers' | 'name'>
}
export type ResolvedLoggerOptions = z.output<typeof loggerOptionsSchema>

/** Parses options with `schema`, turning zod issues into one LoggingError that lists each problem. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  return parseWith(
    schema,
    input,
    (message, details) => new LoggingError('LOGGING_INVALID_OPTIONS', message, { details }),
    what,
  )
}
