import { type Backoff, durationSchema, parseWith, type RetryOptions, retrySchema } from '@backplane/internal'
import { z } from 'zod'
import { renamed } from './deprecated.js'
import { ConfigError } from './errors.js'
import { type ConfigLogger, isLogger } from './logger.js'
import { isZodSchema } from './schema.js'
import type { ConfigSource } from './sources/types.js'

const source = z.custom<ConfigSource>(
  (value) => typeof value === 'object' && value !== null && typeof (value as { load?: unknown }).load === 'function',
  { error: 'expected a source: file(...), env(...), memory(...), etcd(...) or an object with a load() method' },
)

/** Retries of a source that was down at start: for ever by default, exponential, with full jitter. */
export const START_RETRY_DEFAULTS: Backoff = {
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  jitter: 'full',
}

export const createConfigOptionsSchema = z.strictObject({
  /** The zod schema of the whole configuration: types, defaults and validation. */
  schema: z.custom<z.ZodType>(isZodSchema, { error: 'expected a zod 4 schema, e.g. z.object({ ... })' }),
  /** Sources, lowest precedence first: schema defaults < sources[0] < sources[1] < ... */
  sources: z.array(source).default([]),
  /** File holding the last good configuration, written after every applied change. */
  snapshot: z.string().min(1, 'expected a file path').optional(),
  /** At start, wait this long for each source before falling back to the snapshot. */
  startTimeout: durationSchema({ min: 1 }).default(5_000),
  /** Collect updates for this long (restarted by each update) and apply them at once; 0 = what one callback delivers. */
  debounce: durationSchema().default(0),
  /** Apply at the latest this long after the first update of a burst, even if updates keep coming. */
  maxDebounce: durationSchema({ min: 1 }).optional(),
  /** With no snapshot and a source unavailable, start from the schema defaults and the other sources. */
  allowDefaultsOnly: z.boolean().default(false),
  /** Retries of a source that was unavailable at start (exponential, with jitter). */
  retry: retrySchema(START_RETRY_DEFAULTS).prefault({}),
  /** A pino logger or anything with its debug/info/warn/error methods; silent by default. */
  logger: z
    .custom<ConfigLogger>(isLogger, { error: 'expected a pino-like logger with debug/info/warn/error' })
    .optional(),
})

/** Retry options as users may still write them: the new shape, or the old `{ minDelayMs, maxDelayMs }`. */
export type StartRetryOptions = RetryOptions & {
  /** @deprecated use initialDelay */
  minDelayMs?: number | undefined
  /** @deprecated use maxDelay */
  maxDelayMs?: number | undefined
}

/** The old option names of createConfig moved to the new ones (with a one-time warning each). */
export function renameCreateConfigOptions(input: unknown): unknown {
  const options = renamed(
    input,
    [
      { from: 'debounceMs', to: 'debounce' },
      { from: 'maxDebounceMs', to: 'maxDebounce' },
    ],
    'createConfig',
  )
  if (typeof options !== 'object' || options === null || !('retry' in options)) return options
  const retry = renamed(
    options.retry,
    [
      { from: 'minDelayMs', to: 'initialDelay' },
      { from: 'maxDelayMs', to: 'maxDelay' },
    ],
    'createConfig.retry',
  )
  return retry === options.retry ? options : { ...options, retry }
}

/** Parses options with `schema`, turning zod issues into one ConfigError that lists each problem. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  return parseWith(
    schema,
    input ?? {},
    (message, details) => new ConfigError('CONFIG_INVALID_OPTIONS', message, { details }),
    what,
  )
}
