import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pipeline, type Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { z } from 'zod'
import { type LogFileOnDisk, listLogFiles, parseLogFileName } from './file-names.js'
import { SearchError, type SearchIssue } from './search-error.js'

/** pino's default level numbers by label. */
export const LOG_LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
}

/** Something that did not stop the search: an unreadable file, a missing directory, non-JSON lines. */
export interface SearchWarning {
  /** The file or directory concerned. */
  path: string
  message: string
  cause?: unknown
}

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

/** One matching line. */
export interface LogRecord {
  /** The line parsed as JSON. */
  record: Record<string, unknown>
  /** The line exactly as in the file, without its line break. */
  raw: string
  /** Path of the file it was read from. */
  file: string
  /** 1-based line number in the (decompressed) file. */
  lineNumber: number
  /** `time` as epoch ms, or undefined when missing or unparsable. */
  time: number | undefined
  /** `level` as a number, or undefined for a label that is not one of pino's defaults. */
  level: number | undefined
  /** `service.name`, else the service the file is named for. */
  service: string | undefined
}

/**
 * A record may be stamped shortly before the file holding it was opened (asynchronous writes),
 * and names keep only whole seconds: widen each file's time span by this much before skipping it.
 */
const FILE_SPAN_SLACK_MS = 5_000

interface Query {
  dirs: string[]
  traceId: string | undefined
  minLevel: number | undefined
  since: number
  until: number
  services: ReadonlySet<string> | undefined
  grep: ((text: string) => boolean) | undefined
  limit: number
  warn: (warning: SearchWarning) => void
}

/** A file to read and the times its records can have, [from, to). */
interface PlannedFile {
  path: string
  compressed: boolean
  /** The service the file is named for; its records then match `service` without looking inside. */
  service: string | undefined
  from: number
  to: number
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
  const sources = await planSources(query)
  let count = 0
  for await (const record of mergeByTime(sources.map((files) => readFiles(files, query)))) {
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

export function levelNumber(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (/^\d+$/.test(value)) return Number(value)
  return LOG_LEVELS[value.toLowerCase()]
}

function matcher(grep: string | RegExp): (text: string) => boolean {
  if (typeof grep === 'string') return (text) => text.includes(grep)
  // A g or y flag makes test() stateful (lastIndex) and would skip matches on later lines.
  const pattern = new RegExp(grep.source, grep.flags.replace(/[gy]/g, ''))
  return (text) => pattern.test(text)
}

// ---------------------------------------------------------------------------------------------
// Planning: which files, in which order

/** Lists each directory's files as sources: each source's files are read one after the other. */
async function planSources(query: Query): Promise<PlannedFile[][]> {
  const perDir = await Promise.all(query.dirs.map((dir) => planDir(dir, query)))
  return perDir.flat().filter((files) => files.length > 0)
}

async function planDir(dir: string, query: Query): Promise<PlannedFile[][]> {
  try {
    const [named, other] = await Promise.all([listLogFiles(dir), listOtherLogFiles(dir)])
    const others = other.filter((file) => overlaps(file, query)).map((file) => [file])
    return [...planNamedFiles(named, query), ...others]
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : errorMessage(error)
    query.warn({ path: dir, message: `cannot list ${dir}: ${reason}`, cause: error })
    return []
  }
}

/** One source per service: its files already sort oldest first, and each ends where the next begins. */
function planNamedFiles(files: LogFileOnDisk[], query: Query): PlannedFile[][] {
  const byService = new Map<string, LogFileOnDisk[]>()
  for (const file of files) {
    if (query.services && !query.services.has(file.name)) continue
    const own = byService.get(file.name)
    if (own) own.push(file)
    else byService.set(file.name, [file])
  }
  return [...byService.keys()].sort().map((service) => {
    const own = byService.get(service) ?? []
    return own.map((file, i) => planNamedFile(file, own[i + 1])).filter((file) => overlaps(file, query))
  })
}

/** A rotated file holds the records from its start until the next file of its service starts. */
function planNamedFile(file: LogFileOnDisk, next: LogFileOnDisk | undefined): PlannedFile {
  return {
    path: file.path,
    compressed: file.compressed,
    service: file.name,
    from: file.startedAt - FILE_SPAN_SLACK_MS,
    to: (next?.startedAt ?? Number.POSITIVE_INFINITY) + FILE_SPAN_SLACK_MS,
  }
}

/** `*.log` / `*.log.gz` files not named by the rotation scheme: the last write bounds their records. */
async function listOtherLogFiles(dir: string): Promise<PlannedFile[]> {
  const names = (await readdir(dir)).filter((name) => /\.log(\.gz)?$/.test(name) && !parseLogFileName(name))
  const files: PlannedFile[] = []
  for (const name of names) {
    const path = join(dir, name)
    const info = await stat(path).catch(() => undefined) // gone since readdir: nothing to read
    if (!info?.isFile()) continue
    const to = info.mtimeMs + FILE_SPAN_SLACK_MS
    files.push({ path, compressed: name.endsWith('.gz'), service: undefined, from: Number.NEGATIVE_INFINITY, to })
  }
  return files.sort((a, b) => a.to - b.to)
}

function overlaps(file: PlannedFile, query: Query): boolean {
  return file.from < query.until && file.to > query.since
}

// ---------------------------------------------------------------------------------------------
// Reading

async function* readFiles(files: PlannedFile[], query: Query): AsyncGenerator<LogRecord> {
  for (const file of files) yield* readFile(file, query)
}

async function* readFile(file: PlannedFile, query: Query): AsyncGenerator<LogRecord> {
  const input = openFile(file)
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  let lineNumber = 0
  let notJson = 0
  let lastNotJson = false // the last line of a file being written may be incomplete: not reported
  try {
    for await (const raw of lines) {
      lineNumber++
      if (lastNotJson) notJson++
      lastNotJson = false
      if (raw.trim() === '' || (query.traceId !== undefined && !raw.includes(query.traceId))) continue
      const record = toLogRecord(raw, file, lineNumber)
      if (record === undefined) lastNotJson = true
      else if (matches(record, file, query)) yield record
    }
    const message = `${file.path}: skipped ${notJson} line(s) that are not JSON`
    if (notJson > 0) query.warn({ path: file.path, message })
  } catch (error) {
    const message = `cannot read ${file.path} after line ${lineNumber}: ${errorMessage(error)}; skipped the rest of it`
    query.warn({ path: file.path, message, cause: error })
  } finally {
    lines.close()
    input.destroy()
  }
}

function openFile(file: PlannedFile): Readable {
  const stream = createReadStream(file.path)
  // pipeline forwards a read error (EACCES, ENOENT) to the gunzip stream readline listens to.
  return file.compressed ? pipeline(stream, createGunzip(), () => {}) : stream
}

function toLogRecord(raw: string, file: PlannedFile, lineNumber: number): LogRecord | undefined {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const record = value as Record<string, unknown>
  const serviceName = record['service.name']
  return {
    record,
    raw,
    file: file.path,
    lineNumber,
    time: epochMs(record.time),
    level: typeof record.level === 'string' || typeof record.level === 'number' ? levelNumber(record.level) : undefined,
    service: typeof serviceName === 'string' ? serviceName : file.service,
  }
}

function epochMs(time: unknown): number | undefined {
  if (typeof time === 'number') return Number.isFinite(time) ? time : undefined
  if (typeof time !== 'string') return undefined
  const ms = Date.parse(time)
  return Number.isNaN(ms) ? undefined : ms
}

function matches(entry: LogRecord, file: PlannedFile, query: Query): boolean {
  const { record } = entry
  if (query.traceId !== undefined && record.trace_id !== query.traceId) return false
  if (query.minLevel !== undefined && (entry.level === undefined || entry.level < query.minLevel)) return false
  if (query.since !== Number.NEGATIVE_INFINITY || query.until !== Number.POSITIVE_INFINITY) {
    if (entry.time === undefined || entry.time < query.since || entry.time >= query.until) return false
  }
  if (query.services && file.service === undefined && !query.services.has(entry.service ?? '')) return false
  if (query.grep && !(typeof record.msg === 'string' && query.grep(record.msg)) && !query.grep(entry.raw)) return false
  return true
}

// ---------------------------------------------------------------------------------------------
// Merging

/**
 * k-way merge of sources that are each in time order. A linear scan for the earliest head is
 * enough: k is the number of services times directories, too few for a heap to pay off. A record
 * without a time keeps its source's previous time so it stays next to its neighbours.
 */
async function* mergeByTime(sources: AsyncGenerator<LogRecord>[]): AsyncGenerator<LogRecord> {
  try {
    const heads = await Promise.all(sources.map(nextOf))
    const lastTimes = sources.map(() => Number.NEGATIVE_INFINITY)
    for (let i = earliest(heads, lastTimes); i !== -1; i = earliest(heads, lastTimes)) {
      const record = heads[i] as LogRecord
      lastTimes[i] = record.time ?? (lastTimes[i] as number)
      yield record
      heads[i] = await nextOf(sources[i] as AsyncGenerator<LogRecord>)
    }
  } finally {
    await Promise.all(sources.map((source) => source.return(undefined)))
  }
}

async function nextOf(source: AsyncGenerator<LogRecord>): Promise<LogRecord | undefined> {
  const result = await source.next()
  return result.done ? undefined : result.value
}

/** Index of the head with the earliest time, the first source winning ties; -1 when all are done. */
function earliest(heads: (LogRecord | undefined)[], lastTimes: number[]): number {
  let best = -1
  let bestTime = Number.POSITIVE_INFINITY
  heads.forEach((head, i) => {
    const time = head?.time ?? lastTimes[i] ?? Number.NEGATIVE_INFINITY
    if (head !== undefined && (best === -1 || time < bestTime)) {
      best = i
      bestTime = time
    }
  })
  return best
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
