import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { runActivityCommand } from './cli-activities.js'
import { table } from './cli-output.js'
import { runScheduleCommand } from './cli-schedules.js'
import { createEngine } from './engine.js'
import { WorkflowError } from './errors.js'
import { type AnyMachine, isMachine } from './machine.js'
import { toMermaid } from './mermaid.js'
import { INSTANCE_STATUSES, type InstanceStatus, type Store } from './store.js'
import { storeFromUrl } from './stores/url.js'
import type { Engine, HistoryEntry, Instance } from './types.js'
import { serveInspector } from './ui/serve.js'

const USAGE = `Usage:
  backplane-workflow list [--machine M] [--state S] [--status running|done|failed|cancelled] [--limit N] [--after ID]
  backplane-workflow show <id>                      an instance and its history
  backplane-workflow history <id>                   every transition: time, event, from, to
  backplane-workflow send <id> <TYPE> [--data JSON] [--event-id ID]
  backplane-workflow retry <id>                     set a failed instance running again
  backplane-workflow cancel <id> [--reason TEXT]    end a running or failed instance as cancelled (and its children)
  backplane-workflow mermaid <machine> [--version N]  the state diagram (Mermaid)
  backplane-workflow schedules                      schedules: id, spec, machine, next and last tick, overlap, paused
  backplane-workflow unschedule <id>                remove a schedule (the instances it started stay)
  backplane-workflow activities                     activity types: paused, breaker (closed, open, half-open), failures
  backplane-workflow pause-activity <name>          stop starting attempts of an activity type, in every engine
  backplane-workflow resume-activity <name>         run them again (and close its breaker)
  backplane-workflow ui [--store URL] [--port N] [--host H]  the inspector: a read-only web page
                        (instances, counts, history, diagrams, live) until Ctrl-C; prints its URL

Options:
  -c, --config FILE  a module whose default export is { store, machines } (or a function returning it);
                     default: $BACKPLANE_WORKFLOW_CONFIG, else ./workflow.config.mjs
  --store URL        ui: read this store instead of the config's: a SQLite file (or sqlite:PATH) or
                     postgres://user@host/db[?schema=S&tablePrefix=P]; diagrams then come from history
  --port N, --host H ui: where to listen (default 4000 on 127.0.0.1: the page has no authentication)
  --json             print JSON
  -h, --help         show this help

send, retry and cancel commit the transition only; the engine process driving the store runs the timers and
activities that follow (it picks them up within its pollInterval).
Exit status: 0 on success, 1 when the instance or machine does not exist, 2 on bad usage or an error.
`

const FLAGS = {
  config: { type: 'string', short: 'c' },
  machine: { type: 'string' },
  state: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  after: { type: 'string' },
  data: { type: 'string' },
  'event-id': { type: 'string' },
  reason: { type: 'string' },
  version: { type: 'string' },
  store: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env?: Readonly<Record<string, string | undefined>>
  cwd?: string
  /** Ends `ui` (default: SIGINT or SIGTERM). */
  signal?: AbortSignal
}

interface Config {
  store: Store
  machines: readonly AnyMachine[]
}

class UsageError extends Error {}

async function loadConfig(file: string): Promise<Config> {
  let module: { default?: unknown }
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown }
  } catch (error) {
    throw new UsageError(
      `cannot load the config ${file}: ${(error as Error)?.message ?? error}\n(it must export default { store, machines })`,
    )
  }
  let config = module.default
  if (typeof config === 'function') config = await (config as () => unknown)()
  const c = config as Partial<Config> | undefined
  if (
    !c ||
    typeof c !== 'object' ||
    !Array.isArray(c.machines) ||
    !c.machines.every(isMachine) ||
    typeof c.store?.open !== 'function'
  ) {
    throw new UsageError(
      `${file} must export default { store, machines } (a store and a list of machines from defineMachine)`,
    )
  }
  return c as Config
}

const time = (date: Date) =>
  date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')

function describeEvent(entry: HistoryEntry): string {
  const event = entry.event as Record<string, unknown> | null
  if (!event || typeof event !== 'object') return String(event)
  if (entry.kind === 'timer') return `after ${event.delay}`
  if (entry.kind === 'activity.done') return `done ${event.activity}`
  if (entry.kind === 'activity.error')
    return `error ${event.activity}: ${(event.error as { message?: string })?.message ?? ''}`
  if (entry.kind === 'failed') return `failed: ${JSON.stringify(event)}`
  const { type, id, ...rest } = event
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ''
  return `${String(type)}${id !== undefined ? ` (id ${String(id)})` : ''}${extra}`
}

function historyText(entries: HistoryEntry[]): string {
  return table([
    ['SEQ', 'AT', 'KIND', 'FROM', 'TO', 'EVENT'],
    ...entries.map((e) => [String(e.seq), time(e.at), e.kind, e.from ?? '-', e.to, describeEvent(e)]),
  ])
}

function instanceText(instance: Instance): string {
  const lines = [
    `id:       ${instance.id}`,
    `machine:  ${instance.machine} v${instance.version}`,
    `state:    ${instance.state} (${instance.status})`,
    `revision: ${instance.revision}`,
    `created:  ${time(instance.createdAt)}`,
    `updated:  ${time(instance.updatedAt)}`,
    `context:  ${JSON.stringify(instance.context)}`,
  ]
  for (const timer of instance.timers) lines.push(`timer:    after ${timer.delay}, due ${time(timer.deadline)}`)
  for (const task of instance.tasks)
    lines.push(
      `activity: ${task.activity}, attempt ${task.attempt}, due ${time(task.runAt)}, key ${task.idempotencyKey}${task.lastError ? `, last error: ${task.lastError.message}` : ''}`,
    )
  if (instance.failure) lines.push(`failure:  ${instance.failure.message}`)
  return `${lines.join('\n')}\n`
}

/** Runs `backplane-workflow` with `argv` (without node and script) and resolves to its exit status. */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const write = (text: string) => new Promise<void>((done) => io.stdout.write(text, () => done()))
  let engine: Engine | undefined
  try {
    let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>
    try {
      parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true })
    } catch (error) {
      throw new UsageError((error as Error).message)
    }
    const { values, positionals } = parsed
    const [command, ...args] = positionals
    if (values.help || command === undefined || command === 'help') {
      await write(USAGE)
      return command === undefined && !values.help ? 2 : 0
    }
    const env = io.env ?? process.env
    const configFile = resolve(
      io.cwd ?? process.cwd(),
      values.config ?? env.BACKPLANE_WORKFLOW_CONFIG ?? 'workflow.config.mjs',
    )
    const need = (count: number, what: string) => {
      if (args.length !== count) throw new UsageError(`${command} expects ${what}`)
    }
    const integer = (value: string | undefined, flag: string) => {
      if (value === undefined) return undefined
      if (!/^\d+$/.test(value))
        throw new UsageError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`)
      return Number(value)
    }

    if (command !== 'ui' && (values.store ?? values.port ?? values.host) !== undefined)
      throw new UsageError('--store, --port and --host are options of ui')
    switch (command) {
      case 'mermaid': {
        need(1, 'a machine id: mermaid <machine> [--version N]')
        const config = await loadConfig(configFile)
        const version = integer(values.version, '--version')
        const candidates = config.machines.filter(
          (m) => m.id === args[0] && (version === undefined || m.version === version),
        )
        const machine = candidates.sort((a, b) => b.version - a.version)[0]
        if (!machine) {
          io.stderr.write(
            `no machine ${args[0]}${version ? ` v${version}` : ''} in ${configFile} (machines: ${config.machines.map((m) => `${m.id} v${m.version}`).join(', ')})\n`,
          )
          return 1
        }
        await write(toMermaid(machine))
        return 0
      }
      case 'ui': {
        need(0, 'no arguments (use --store or --config, --port, --host)')
        if (values.store !== undefined && values.config !== undefined)
          throw new UsageError('ui reads --store or --config, not both')
        const port = integer(values.port, '--port') ?? 4000
        if (port > 65535) throw new UsageError(`--port: expected 0 to 65535, got ${port}`)
        const { store, machines } =
          values.store !== undefined
            ? { store: storeFromUrl(values.store, { mustExist: true }), machines: [] }
            : await loadConfig(configFile)
        await serveInspector({
          store,
          machines,
          port,
          host: values.host ?? '127.0.0.1',
          signal: io.signal,
          print: write,
        })
        return 0
      }
      case 'list':
      case 'show':
      case 'history':
      case 'send':
      case 'retry':
      case 'cancel':
      case 'schedules':
      case 'unschedule':
      case 'activities':
      case 'pause-activity':
      case 'resume-activity':
        break
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }

    if (command === 'list') need(0, 'no arguments (use --machine, --state, --status)')
    if (command === 'show' || command === 'history' || command === 'retry' || command === 'cancel')
      need(1, `an instance id: ${command} <id>`)
    if (command === 'send') need(2, 'an instance id and an event type: send <id> <TYPE> [--data JSON]')
    if (command === 'schedules') need(0, 'no arguments')
    if (command === 'unschedule') need(1, 'a schedule id: unschedule <id>')
    if (command === 'activities') need(0, 'no arguments')
    if (command === 'pause-activity' || command === 'resume-activity') need(1, `an activity name: ${command} <name>`)
    let data: Record<string, unknown> = {}
    if (values.data !== undefined) {
      try {
        data = JSON.parse(values.data) as Record<string, unknown>
      } catch (error) {
        throw new UsageError(`--data: expected a JSON object, got ${values.data} (${(error as Error).message})`)
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data))
        throw new UsageError('--data: expected a JSON object of event fields')
    }
    const status = values.status
    if (status !== undefined && !(INSTANCE_STATUSES as readonly string[]).includes(status))
      throw new UsageError(`--status: expected ${INSTANCE_STATUSES.join(', ')}, got ${status}`)

    const config = await loadConfig(configFile)
    engine = await createEngine({ store: config.store, machines: config.machines, worker: false })
    const id = args[0] as string
    switch (command) {
      case 'schedules':
      case 'unschedule':
        return runScheduleCommand(command, args, values.json === true, engine, write, io.stderr)
      case 'activities':
      case 'pause-activity':
      case 'resume-activity':
        return runActivityCommand(command, args, values.json === true, engine, write)
      case 'list': {
        const page = await engine.list({
          machine: values.machine,
          state: values.state,
          status: status as InstanceStatus | undefined,
          limit: integer(values.limit, '--limit') ?? 100,
          after: values.after,
        })
        if (values.json) await write(`${JSON.stringify(page, null, 2)}\n`)
        else {
          await write(
            page.instances.length === 0
              ? 'no instances\n'
              : table([
                  ['ID', 'MACHINE', 'STATE', 'STATUS', 'UPDATED'],
                  ...page.instances.map((i) => [
                    i.id,
                    `${i.machine} v${i.version}`,
                    i.state,
                    i.status,
                    time(i.updatedAt),
                  ]),
                ]),
          )
          if (page.next !== null) await write(`more instances: the next page is --after ${page.next}\n`)
        }
        return 0
      }
      case 'show': {
        const instance = await engine.get(id)
        const history = await engine.history(id)
        if (values.json) await write(`${JSON.stringify({ instance, history }, null, 2)}\n`)
        else await write(`${instanceText(instance)}\n${historyText(history)}`)
        return 0
      }
      case 'history': {
        const history = await engine.history(id)
        await write(values.json ? `${JSON.stringify(history, null, 2)}\n` : historyText(history))
        return 0
      }
      case 'send': {
        const event = { ...data, type: args[1] as string, ...(values['event-id'] ? { id: values['event-id'] } : {}) }
        const result = await engine.send(id, event)
        await write(
          values.json
            ? `${JSON.stringify(result, null, 2)}\n`
            : `${result.status}: ${id} is in ${result.instance.state} (${result.instance.status})\n`,
        )
        return 0
      }
      case 'retry': {
        const instance = await engine.retry(id)
        await write(
          values.json
            ? `${JSON.stringify(instance, null, 2)}\n`
            : `retrying: ${id} is ${instance.status} in ${instance.state}\n`,
        )
        return 0
      }
      case 'cancel': {
        const instance = await engine.cancel(id, { reason: values.reason ?? 'cancelled from the command line' })
        await write(
          values.json ? `${JSON.stringify(instance, null, 2)}\n` : `${id} is ${instance.status} in ${instance.state}\n`,
        )
        return 0
      }
    }
    return 2
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`backplane-workflow: ${error.message}\n\n${USAGE}`)
      return 2
    }
    if (WorkflowError.is(error)) {
      io.stderr.write(`backplane-workflow: ${error.code}: ${error.message}\n`)
      return error.code === 'WORKFLOW_UNKNOWN_INSTANCE' || error.code === 'WORKFLOW_UNKNOWN_MACHINE' ? 1 : 2
    }
    io.stderr.write(`backplane-workflow: ${(error as Error)?.stack ?? error}\n`)
    return 2
  } finally {
    await engine?.close().catch(() => undefined)
  }
}
