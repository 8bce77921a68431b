import { parseArgs } from 'node:util'
// By package name: the bin's bundle then holds only this file, not a second copy of the core.
import { type Broker, createBroker, type DeadLetter, MessagingError, type ReplayOutcome } from '@backplane/messaging'

export const USAGE = `usage: backplane-messaging dead-letters list|show|replay --broker <url> --topic <topic> [options]

  list      the dead letters of <topic>, the oldest first, each pending or replayed
  show      one dead letter: show <id-or-position>, or --id <id>
  replay    publish the matching pending dead letters to <topic> again (same ids), for the
            group that failed them only; --again replays those replayed before too

  -b, --broker             broker URL: memory://, kafka://host:9092, nats://host:4222?jetstream=true
  -t, --topic              the topic the messages failed on
      --dead-letter-topic  its dead-letter topic, when the subscriptions named one (default <topic>.dlq)
      --reason             max-attempts, non-retryable, schema, malformed, ...
      --since, --until     dead-lettered at or after / before (RFC 3339: 2026-12-01T09:30:00Z)
      --id                 a message id (CloudEvents id)
      --status             pending or replayed
      --limit              at most this many, the oldest first
      --again              replay: also those replayed before
      --json               JSON instead of a table
  -h, --help               this text

Exit status: 0 done, 1 failed (broker, or nothing to show), 2 wrong usage.
`

export interface MessagingCliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
}

const OPTIONS = {
  broker: { type: 'string', short: 'b' },
  topic: { type: 'string', short: 't' },
  'dead-letter-topic': { type: 'string' },
  reason: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  id: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  again: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

class UsageError extends Error {}

function filterOf(values: Values): Record<string, unknown> {
  const filter: Record<string, unknown> = {}
  for (const name of ['reason', 'since', 'until', 'id', 'status'] as const) {
    if (values[name] !== undefined) filter[name] = values[name]
  }
  if (values.limit !== undefined) {
    const limit = /^\d{1,7}$/.test(values.limit) ? Number(values.limit) : Number.NaN
    if (!(limit >= 1))
      throw new UsageError(`--limit: expected a whole number of at least 1, got ${JSON.stringify(values.limit)}`)
    filter.limit = limit
  }
  return filter
}

/** One dead letter as JSON: dates as text, a body that is neither JSON nor text as base64. */
function json(entry: DeadLetter): Record<string, unknown> {
  const { data, raw: _, at, replayedAt, headers, ...rest } = entry
  const body = data instanceof Uint8Array ? { data_base64: Buffer.from(data).toString('base64') } : { data }
  return { ...rest, at: at.toISOString(), replayedAt: replayedAt?.toISOString(), headers, ...body }
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)))
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

function listing(entries: DeadLetter[]): string {
  if (entries.length === 0) return 'no dead letters\n'
  const rows = [['POSITION', 'ID', 'REASON', 'ATTEMPTS', 'GROUP', 'DEAD-LETTERED', 'STATUS']]
  for (const e of entries) {
    const status = e.replayedAt ? `replayed ${e.replayedAt.toISOString()}` : e.status
    rows.push([e.position, e.id, e.reason, String(e.attempts), e.group ?? '-', e.at.toISOString(), status])
  }
  const pending = entries.filter((e) => e.status === 'pending').length
  return `${table(rows)}\n\n${entries.length} dead letter(s): ${pending} pending, ${entries.length - pending} replayed\n`
}

function details(entry: DeadLetter): string {
  const text = json(entry)
  const { headers, data, data_base64: base64, ...fields } = text as Record<string, unknown>
  const lines = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => [name, String(value)])
  const shown = base64 === undefined ? JSON.stringify(data, null, 2) : `(base64) ${base64}`
  const headerLines = Object.entries(headers as Record<string, string>).map(([n, v]) => [`  ${n}`, v])
  return `${table([...lines, ['headers', ''], ...headerLines])}\n\ndata:\n${shown}\n`
}

function replayed(outcome: ReplayOutcome): string {
  const rows = [['POSITION', 'ID', 'OUTCOME'], ...outcome.items.map((i) => [i.position, i.id, i.outcome])]
  const summary = `${outcome.replayed} replayed, ${outcome.skipped} skipped (replayed before: use --again)`
  return outcome.items.length === 0 ? 'nothing to replay\n' : `${table(rows)}\n\n${summary}\n`
}

async function run(command: string, positionals: string[], values: Values, io: MessagingCliIo): Promise<number> {
  if (!values.broker || !values.topic) throw new UsageError('--broker and --topic are required')
  const filter = filterOf(values)
  if (command === 'show') {
    const key = positionals[0] ?? values.id
    if (key === undefined || positionals.length > 1) throw new UsageError('show: give one id or position')
  } else if (positionals.length > 0) throw new UsageError(`${command}: unexpected ${positionals.join(' ')}`)
  if (values.again && command !== 'replay') throw new UsageError('--again is for replay only')
  const broker: Broker = await createBroker(values.broker)
  try {
    const options = values['dead-letter-topic'] === undefined ? {} : { deadLetterTopic: values['dead-letter-topic'] }
    const dead = broker.deadLetters(values.topic, options)
    if (command === 'list') {
      const entries = await dead.list(filter)
      io.stdout.write(values.json ? `${JSON.stringify(entries.map(json), null, 2)}\n` : listing(entries))
      return 0
    }
    if (command === 'show') {
      const key = (positionals[0] ?? values.id) as string
      const entry = await dead.get(key)
      if (entry === undefined) {
        io.stderr.write(
          `backplane-messaging: no dead letter ${JSON.stringify(key)} of ${values.topic} on ${dead.deadLetterTopic}\n`,
        )
        return 1
      }
      io.stdout.write(values.json ? `${JSON.stringify(json(entry), null, 2)}\n` : details(entry))
      return 0
    }
    const outcome = await dead.replay({ ...filter, ...(values.again ? { again: true } : {}) })
    io.stdout.write(values.json ? `${JSON.stringify(outcome, null, 2)}\n` : replayed(outcome))
    return 0
  } finally {
    await broker.close()
  }
}

/** The `backplane-messaging` command: resolves with the exit status. */
export async function main(argv: string[], io: MessagingCliIo): Promise<number> {
  let parsed: { values: Values; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    io.stderr.write(`backplane-messaging: ${(error as Error).message}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.stdout.write(USAGE)
    return 0
  }
  const [group, command, ...rest] = positionals
  if (group !== 'dead-letters' || (command !== 'list' && command !== 'show' && command !== 'replay')) {
    io.stderr.write(`backplane-messaging: expected "dead-letters list|show|replay"\n\n${USAGE}`)
    return 2
  }
  try {
    return await run(command, rest, values, io)
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`backplane-messaging: ${error.message}\n\n${USAGE}`)
      return 2
    }
    const wrongUsage =
      MessagingError.is(error) && (error.code === 'MESSAGING_INVALID_OPTIONS' || error.code === 'MESSAGING_INVALID_URL')
    io.stderr.write(
      `backplane-messaging: ${MessagingError.is(error) ? error.message : ((error as Error)?.stack ?? error)}\n`,
    )
    return wrongUsage ? 2 : 1
  }
}
