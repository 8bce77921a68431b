import { z } from 'zod'
import { SearchError, type SearchIssue } from './search-error.js'
import { lineFilterFor } from './search-filter.js'
import { LOG_LEVELS, levelNumber } from './search-levels.js'
import { filesAhead, mergeByTime, readSource } from './search-merge.js'
import { planSources } from './search-plan.js'
import type { LogRecord, Query, SearchWarning } from './search-types.js'

export { LOG_LEVELS, levelNumber } from './search-levels.js'
export type { LogRecord, SearchWarning } from './search-types.js'

export interface SearchOptions {
  /** Directories to search; every `*.log` and `*.log.gz` file directly inside is read. */
  dirs: string[]
  /** Only records with this `trace_id` (32 hex characters, case-insensitive). */
  traceId?: string | undefined
  /** Minimum level: a label (`'warn'`) or a number (`40`). Records with unknown labels are excluded. */
  level?: string | number | undefined
  /** Inclusive lower bound on the record's `time`. Records without a time are then excluded. */
  since?: Date | number | undefined
  /** Exclusive upper bound on the record's `time`. Records without a time are then excluded. */
  until?: Date | number | undefined
  /** Only these services: files named for other services are not opened; others match on `service.name`. */
  service?: string | string[] | undefined
  /** Text (case-sensitive substring) or RegExp, matched against `msg` and against the raw line. */
  grep?: string | RegExp | undefined
  /** Stop after this many records. */
  limit?: number | undefined
  /** Called for files that cannot be read (e.g. corrupt gzip); the search goes on with the others. */
  onWarning?: ((warning: SearchWarning) => void) | undefined
}

/**
 * Streams the matching records of every log file in `options.dirs`, oldest first (a merge by
 * `time` across services and directories). Throws a `SearchError` at once for invalid options.
 * Breaking out of the loop closes the files still open.
 */
export function searchLogs(options: SearchOptions): AsyncGenerator<LogRecord> {
  return run(parseOptions(options))
}

/** Every record of one trace across `dirs`, in time order. */
export async function collectTrace(
  traceId: string,
  dirs: string[],
  options: Pick<SearchOptions, 'onWarning'> = {},
): Promise<LogRecord[]> {
  const records: LogRecord[] = []
  for await (const record of searchLogs({ ...options, dirs, traceId })) records.push(record)
  return records
}

async function* run(query: Query): AsyncGenerator<LogRecord> {
  const planned = await planSources(query)
  const filter = lineFilterFor(query)
  const ahead = filesAhead(planned.length)
  let count = 0
  for await (const record of mergeByTime(planned.map((files) => readSource(files, query, filter, ahead)))) {
    yield record
    if (++count >= query.limit) return
  }
}

// ---------------------------------------------------------------------------------------------
// Options

const LEVEL_EXPECTED = `a level: ${Object.keys(LOG_LEVELS).join(', ')} or a number`
const SERVICE_EXPECTED = 'a service name or a non-empty list of them'
const timeBound = z.union([z.date(), z.number()], { error: 'a Date or epoch milliseconds' })
const name = z.string().min(1, { error: 'a non-empty name' })

const optionShape = {
  dirs: z
    .array(z.string().min(1, { error: 'a non-empty path' }), { error: 'a list of directories' })
    .min(1, { error: 'at least one directory' }),
  traceId: z
    .string({ error: 'a trace id' })
    .regex(/^[0-9a-f]{32}$/i, { error: 'a trace id of 32 hexadecimal characters' })
    // W3C trace context writes lowercase hex, so a lowercase id can be looked for in the raw line.
    .transform((id) => id.toLowerCase())
    .optional(),
  level: z
    .union([z.string(), z.number()], { error: LEVEL_EXPECTED })
    .transform((value, ctx) => {
      const level = levelNumber(value)
      if (level === undefined) ctx.issues.push({ code: 'custom', input: value, message: LEVEL_EXPECTED })
      return level ?? z.NEVER
    })
    .optional(),
  since: timeBound.optional(),
  until: timeBound.optional(),
  service: z.union([name, z.array(name).min(1, { error: SERVICE_EXPECTED })], { error: SERVICE_EXPECTED }).optional(),
  grep: z.union([z.string().min(1), z.instanceof(RegExp)], { error: 'non-empty text or a RegExp' }).optional(),
  limit: z.number({ error: 'a positive whole number' }).int().positive({ error: 'a positive whole number' }).optional(),
  onWarning: z
    .custom<(warning: SearchWarning) => void>((value) => typeof value === 'function', { error: 'a function' })
    .optional(),
}

const optionsSchema = z
  .strictObject(optionShape, { error: 'an options object like { dirs: ["./logs"] }' })
  .superRefine((options, ctx) => {
    if (options.since !== undefined && options.until !== undefined && +options.since >= +options.until) {
      ctx.addIssue({ code: 'custom', path: ['until'], input: options.until, message: 'a time later than since' })
    }
  })

const KNOWN_OPTIONS = Object.keys(optionShape).join(', ')

function parseOptions(options: SearchOptions): Query {
  const parsed = optionsSchema.safeParse(options)
  if (!parsed.success) throw new SearchError(toIssues(parsed.error, options))
  const o = parsed.data
  return {
    dirs: o.dirs,
    traceId: o.traceId,
    minLevel: o.level,
    since: o.since === undefined ? Number.NEGATIVE_INFINITY : +o.since,
    until: o.until === undefined ? Number.POSITIVE_INFINITY : +o.until,
    services: o.service === undefined ? undefined : new Set([o.service].flat()),
    grepText: typeof o.grep === 'string' ? o.grep : undefined,
    grep: o.grep === undefined ? undefined : matcher(o.grep),
    limit: o.limit ?? Number.POSITIVE_INFINITY,
    warn: o.onWarning ?? (() => {}),
  }
}

function toIssues(error: z.ZodError, input: unknown): SearchIssue[] {
  return error.issues.flatMap((issue): SearchIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ option: key, expected: `a known option (${KNOWN_OPTIONS})` }))
    }
    const option = issue.path.map(String).join('.') || 'options'
    return [{ option, received: valueAt(input, issue.path), expected: issue.message }]
  })
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value
  for (const key of path) current = (current as Record<PropertyKey, unknown> | undefined)?.[key]
  return current
}

function matcher(grep: string | RegExp): (text: string) => boolean {
  if (typeof grep === 'string') return (text) => text.includes(grep)
  // A g or y flag makes test() stateful (lastIndex) and would skip matches on later lines.
  const pattern = new RegExp(grep.source, grep.flags.replace(/[gy]/g, ''))
  return (text) => pattern.test(text)
}
