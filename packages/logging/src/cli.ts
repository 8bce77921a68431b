import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { parseDuration } from '@backplane/internal'
import { LOG_LEVELS, type LogRecord, type SearchOptions, type SearchWarning, searchLogs } from './search.js'
import { SearchError, type SearchIssue } from './search-error.js'

const USAGE = `Usage:
  backplane-logs [search] [dirs...] [options]   search log files (dirs default to ./logs)
  backplane-logs trace <trace_id> [dirs...]     one trace's records across services, in time order

Options:
  --trace ID      only records of this trace (32 hex characters)
  --level L       minimum level: trace, debug, info, warn, error, fatal or a number
  --since T       records at or after T: an ISO date/time (local time unless it has a zone;
                  a bare date is UTC) or a duration ago: 30s, 15m, 2h, 7d, 1w
  --until T       records before T (same forms as --since)
  --service S     only this service; repeat for several
  --grep TEXT     only records whose msg or raw line contains TEXT (case-sensitive)
  --limit N       stop after N records
  --json          print the matching lines unchanged (JSON lines)
  -h, --help      show this help

Exit status: 0 when something matched, 1 when nothing did, 2 on bad usage or an error.
`

const FLAGS = {
  trace: { type: 'string' },
  level: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  service: { type: 'string', multiple: true },
  grep: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/** Flag names for `SearchOptions` keys, so option errors read as the user typed them. */
const FLAG_OF: Readonly<Record<string, string>> = {
  dirs: 'directory',
  traceId: '--trace',
  level: '--level',
  since: '--since',
  until: '--until',
  service: '--service',
  grep: '--grep',
  limit: '--limit',
}

const TIME_EXPECTED = 'an ISO date/time or a relative duration like 15m, 2h, 7d'
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

export type CliOutput = NodeJS.WritableStream & { isTTY?: boolean }

export interface CliIo {
  stdout: CliOutput
  stderr: CliOutput
  /** Read for NO_COLOR. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>
  /** The clock relative `--since`/`--until` count back from. Default: `Date.now`. */
  now?: () => number
}

type Command = { kind: 'help' } | { kind: 'search'; options: SearchOptions; json: boolean }

/** Runs `backplane-logs` with `argv` (without node and script) and resolves to its exit status. */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const out = lineWriter(io.stdout)
  try {
    const command = parseCommand(argv, io.now?.() ?? Date.now())
    if (command.kind === 'help') {
      await out.write(USAGE)
      return 0
    }
    return await search(command, io, out)
  } catch (error) {
    io.stderr.write(`backplane-logs: ${usageMessage(error)}\n`)
    if (isUsageError(error)) io.stderr.write('Run backplane-logs --help for usage.\n')
    return 2
  }
}

async function search(command: Extract<Command, { kind: 'search' }>, io: CliIo, out: LineWriter): Promise<number> {
  const onWarning = (warning: SearchWarning) => io.stderr.write(`backplane-logs: warning: ${warning.message}\n`)
  const color = io.stdout.isTTY === true && !(io.env ?? process.env).NO_COLOR
  let found = 0
  for await (const record of searchLogs({ ...command.options, onWarning })) {
    found++
    const line = command.json ? record.raw : formatPretty(record, color)
    if (!(await out.write(`${line}\n`))) break // the reader went away (EPIPE): stop reading files
  }
  return found > 0 ? 0 : 1
}

// ---------------------------------------------------------------------------------------------
// Arguments

function parseCommand(argv: string[], now: number): Command {
  const { values, positionals } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true })
  if (values.help) return { kind: 'help' }
  let dirs = positionals[0] === 'search' ? positionals.slice(1) : positionals
  let traceId = values.trace
  if (positionals[0] === 'trace') {
    if (positionals[1] === undefined) throw usage('trace', undefined, 'a trace id: trace <trace_id> [dirs...]')
    if (traceId !== undefined) throw usage('--trace', traceId, 'no --trace with trace <trace_id>')
    traceId = positionals[1]
    dirs = positionals.slice(2)
  }
  const options: SearchOptions = { dirs: dirs.length > 0 ? dirs : ['./logs'] }
  if (traceId !== undefined) options.traceId = traceId
  if (values.level !== undefined) options.level = values.level
  if (values.since !== undefined) options.since = new Date(parseTime('--since', values.since, now))
  if (values.until !== undefined) options.until = new Date(parseTime('--until', values.until, now))
  if (values.service !== undefined) options.service = values.service
  if (values.grep !== undefined) options.grep = values.grep
  if (values.limit !== undefined) options.limit = parseLimit(values.limit)
  return { kind: 'search', options, json: values.json === true }
}

/** An ISO date/time, or a duration meaning that long before `now`. */
export function parseTime(flag: string, text: string, now: number): number {
  // A bare number is not taken as milliseconds ago here: "2026" is far likelier a mistyped date.
  const ago = /[a-z]\s*$/i.test(text) ? parseDuration(text) : undefined
  if (ago !== undefined) return now - ago
  const ms = ISO_DATE.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isNaN(ms)) throw usage(flag, text, TIME_EXPECTED)
  return ms
}

function parseLimit(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) === 0) throw usage('--limit', text, 'a positive whole number')
  return Number(text)
}

function usage(option: string, received: string | undefined, expected: string): SearchError {
  return new SearchError([received === undefined ? { option, expected } : { option, received, expected }])
}

function isUsageError(error: unknown): boolean {
  return SearchError.is(error) || String((error as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS_')
}

function usageMessage(error: unknown): string {
  if (!SearchError.is(error)) return error instanceof Error ? error.message : String(error)
  const issues = error.issues.map((issue): SearchIssue => ({ ...issue, option: FLAG_OF[issue.option] ?? issue.option }))
  return new SearchError(issues).message
}

// ---------------------------------------------------------------------------------------------
// Output

/** Shown in other ways (or not worth a column) in the pretty format. */
const HIDDEN_FIELDS = new Set([
  'time',
  'level',
  'msg',
  'pid',
  'hostname',
  'service.name',
  'trace_id',
  'span_id',
  'trace_flags',
])
const LABEL_OF = new Map(Object.entries(LOG_LEVELS).map(([label, value]) => [value, label]))
const LEVEL_COLORS: Readonly<Record<string, string>> = {
  trace: '90',
  debug: '34',
  info: '32',
  warn: '33',
  error: '31',
  fatal: '35',
}
const TRACE_ID_SHOWN = 8

/** `2026-11-22T22:58:00.123Z INFO  orders  order created  trace=4bf92f35… orderId=o-1` */
export function formatPretty(entry: LogRecord, color: boolean): string {
  const { record } = entry
  const time = entry.time === undefined ? '-' : new Date(entry.time).toISOString()
  const label = levelLabel(entry)
  const level = label.toUpperCase().padEnd(5)
  const head = `${paint(time, '2', color)} ${paint(level, LEVEL_COLORS[label.toLowerCase()], color)} ${safe(entry.service ?? '-')}`
  const fields = typeof record.trace_id === 'string' ? [`trace=${safe(record.trace_id.slice(0, TRACE_ID_SHOWN))}…`] : []
  for (const [key, value] of Object.entries(record)) {
    if (!HIDDEN_FIELDS.has(key)) fields.push(`${safe(key)}=${formatValue(value)}`)
  }
  const msg = typeof record.msg === 'string' ? safe(record.msg) : ''
  return [head, msg, fields.join(' ')].filter((part) => part !== '').join('  ')
}

function levelLabel(entry: LogRecord): string {
  const { level } = entry.record
  if (typeof level === 'string') return level
  return (entry.level !== undefined && LABEL_OF.get(entry.level)) || String(level ?? '-')
}

function formatValue(value: unknown): string {
  if (typeof value === 'string' && /^[^\s"=\p{Cc}]+$/u.test(value)) return value
  return JSON.stringify(value) ?? String(value)
}

/** Log content is untrusted: control characters (terminal escapes) are shown escaped. */
function safe(text: string): string {
  return /\p{Cc}/u.test(text) ? JSON.stringify(text) : text
}

function paint(text: string, code: string | undefined, color: boolean): string {
  return color && code !== undefined ? `\x1b[${code}m${text}\x1b[0m` : text
}

interface LineWriter {
  /** Resolves to false once the reader went away (EPIPE); throws other write errors. */
  write(text: string): Promise<boolean>
}

function lineWriter(stream: CliOutput): LineWriter {
  let failure: NodeJS.ErrnoException | undefined
  // Never removed: an EPIPE can still arrive after main() resolved, and would crash the process
  // as an unhandled 'error' event.
  stream.on('error', (error: NodeJS.ErrnoException) => {
    failure ??= error
  })
  const check = (): boolean => {
    if (failure !== undefined && failure.code !== 'EPIPE') throw failure
    return failure === undefined
  }
  return {
    async write(text) {
      if (!check()) return false
      if (!stream.write(text)) await once(stream, 'drain').catch(() => {}) // the error listener above saw why
      return check()
    },
  }
}
