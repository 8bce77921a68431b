import { z } from 'zod'
import { ConfigError } from './errors.js'
import { type ConfigLogger, isLogger } from './logger.js'
import { isZodSchema } from './schema.js'
import type { ConfigSource } from './sources/types.js'

const source = z.custom<ConfigSource>(
  (value) => typeof value === 'object' && value !== null && typeof (value as { load?: unknown }).load === 'function',
  { error: 'expected a source: file(...), env(...), memory(...), etcd(...) or an object with a load() method' },
)

export const createConfigOptionsSchema = z.strictObject({
  /** The zod schema of the whole configuration: types, defaults and validation. */
  schema: z.custom<z.ZodType>(isZodSchema, { error: 'expected a zod 4 schema, e.g. z.object({ ... })' }),
  /** Sources, lowest precedence first: schema defaults < sources[0] < sources[1] < ... */
  sources: z.array(source).default([]),
  /** File holding the last good configuration, written after every applied change. */
  snapshot: z.string().min(1, 'expected a file path').optional(),
  /** At start, wait this long for each source before falling back to the snapshot. */
  startTimeout: z.number().int().positive().default(5_000),
  /** Collect updates for this long (restarted by each update) and apply them at once; 0 = what one callback delivers. */
  debounceMs: z.number().int().nonnegative().default(0),
  /** Apply at the latest this long after the first update of a burst, even if updates keep coming. */
  maxDebounceMs: z.number().int().positive().optional(),
  /** With no snapshot and a source unavailable, start from the schema defaults and the other sources. */
  allowDefaultsOnly: z.boolean().default(false),
  /** Retry delays for a source that was unavailable at start (exponential, with jitter). */
  retry: z
    .strictObject({
      minDelayMs: z.number().int().positive().default(500),
      maxDelayMs: z.number().int().positive().default(30_000),
    })
    .prefault({}),
  /** A pino logger or anything with its debug/info/warn/error methods; silent by default. */
  logger: z
    .custom<ConfigLogger>(isLogger, { error: 'expected a pino-like logger with debug/info/warn/error' })
    .optional(),
})

/** Parses options with `schema`, turning zod issues into one ConfigError that lists each problem. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {})
  if (result.success) return result.data
  const details = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(options)'
    if (issue.code === 'unrecognized_keys')
      return `${path}: unknown option(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    return `${path}: ${issue.message}`
  })
  throw new ConfigError('CONFIG_INVALID_OPTIONS', `invalid ${what} options: ${details.join('; ')}`, { details })
}
