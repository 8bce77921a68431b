import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { DURATION_EXPECTED, parseDuration } from '@backplane/internal'
import { z } from 'zod'
import { arity, type CliContext, type CliIo, format, json, positiveInt, shown, UsageError } from './cli-common.js'
import { abort, promote, status } from './cli-gray.js'
import { keygen, reseal, ringOf } from './cli-keys.js'
import { apply, history, putOrDelete, rollback, show } from './cli-release.js'
import { ConfigError, messageOf } from './errors.js'
import { diffFileAndEtcd, loadLayers, readPrefix, treeOf } from './etcd/admin.js'
import { type Connection, connect } from './etcd/client.js'
import { buildTree, keyToPath } from './etcd/keys.js'
import { PrefixMirror, watchCheckSchema } from './etcd/mirror.js'
import type { ConfigLogger } from './logger.js'
import { isSecretPath, isZodSchema, REDACTED } from './schema.js'
import { file } from './sources/file.js'
import { type ConfigTree, diffTrees, getAt, splitPath } from './tree.js'

const USAGE = `Usage:
  backplane-config get [path]             the value at a dotted path in etcd (or the whole tree), as JSON
  backplane-config list                   every key under the prefix with its value
  backplane-config watch                  print each change live (path: old -> new) until Ctrl-C
  backplane-config diff <file>            compare a JSON/YAML file with what etcd holds

Releases (each validated against --schema, written with a record of who, when, why and what):
  backplane-config put <path> <value>     publish one value (text, or JSON for objects)
                                          (put a value that starts with - after --: put a.b -- -1)
  backplane-config delete <path>          publish the removal of the key at path and every key under it
  backplane-config apply <file>           publish a JSON/YAML file as the whole configuration
                                          (keys not in the file are deleted)
  backplane-config history                the newest releases first (--limit N, default 20)
  backplane-config show <release>         one release: who, when, why and the diff
  backplane-config rollback <release>     publish the values of an earlier release as a new release

Gray releases (put, delete or apply with --instances, --label or --percent: only those instances see it):
  backplane-config promote [gray]         make the running gray release the release for everyone
  backplane-config abort [gray]           drop it: its instances go back to the current release
  backplane-config status                 per release, the instances running it

Sealed secrets (with a key ring: --keys FILE or BACKPLANE_CONFIG_KEYS; put, apply and gray then seal
secret fields, get --show-secrets opens them):
  backplane-config keygen                 print a new key ring; with --keys FILE, add a key to FILE
                                          (created if missing) and make it current
  backplane-config reseal                 publish every sealed value sealed again with the current key
                                          (with --schema, also seal secret fields held in clear)

Options:
  --endpoints URLS  etcd endpoints, comma-separated (default: $ETCD_ENDPOINTS)
  --prefix P        the app's key prefix, ending in /, e.g. /config/orders/ (default: $BACKPLANE_CONFIG_PREFIX)
  --schema FILE     a JavaScript module exporting the app's zod schema: put and delete refuse
                    what it rejects; every command decodes values and hides secret fields with it
  --export NAME     the module's export holding the schema (default: "default", else its only zod export)
  --file FILE       a file layered under etcd when validating, as the app loads it (repeatable)
  --no-validate     publish without validating (the app rejects an invalid value anyway)
  -m, --message M   why: recorded in the release (put, delete, apply, rollback)
  --author A        who: recorded in the release (default: the OS user, user@host)
  --based-on R      publish only if release R is still the current one (else exit 3)
  --keep N          release records kept; older ones are deleted (default 100)
  --limit N         history: how many releases (default 20)
  --instances IDS   gray release for these instance ids (comma-separated)
  --label K=V       gray release for instances with this label (repeatable: all must match)
  --percent N       gray release for N% of instances (stable hash of the instance id)
  --keys FILE       the key ring file (default: $BACKPLANE_CONFIG_KEYS, its JSON or its path)
  --kid ID          keygen: the new key's id (default k1, k2, ...)
  --show-secrets    print the values of secret fields
  --json            machine-readable output (list, watch, diff)
  --count N         watch: exit after N changes
  --watch-check T   watch: how often to check the watch against etcd, replacing a silent or
                    black-holed one (default 30s; 0: never)
  --timeout T       timeout of each etcd call: 5s, 1500ms, or milliseconds (default 5s)
  -h, --help        show this help

Exit status: 0 success; 1 not found, rejected by the schema, or (diff) different; 2 bad usage or etcd
unreachable; 3 conflict: another release was published since this one was read (nothing written).
`

const COMMANDS = [
  'get',
  'list',
  'watch',
  'diff',
  'put',
  'delete',
  'apply',
  'history',
  'show',
  'rollback',
  'promote',
  'abort',
  'status',
  'keygen',
  'reseal',
]

const FLAGS = {
  endpoints: { type: 'string' },
  prefix: { type: 'string' },
  schema: { type: 'string' },
  export: { type: 'string' },
  file: { type: 'string', multiple: true },
  'no-validate': { type: 'boolean' },
  message: { type: 'string', short: 'm' },
  author: { type: 'string' },
  'based-on': { type: 'string' },
  keep: { type: 'string' },
  limit: { type: 'string' },
  instances: { type: 'string' },
  label: { type: 'string', multiple: true },
  percent: { type: 'string' },
  keys: { type: 'string' },
  kid: { type: 'string' },
  'show-secrets': { type: 'boolean' },
  json: { type: 'boolean' },
  count: { type: 'string' },
  'watch-check': { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export type { CliIo } from './cli-common.js'

type Context = CliContext & { values: ReturnType<typeof parse>['values'] }

/** Runs `backplane-config` with `argv` (without node and script) and resolves to its exit status. */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let connection: Connection | undefined
  try {
    const { values, positionals } = parse(argv)
    const [command, ...args] = positionals
    if (values.help || command === undefined || command === 'help') {
      io.stdout.write(USAGE)
      return values.help || command === 'help' ? 0 : 2
    }
    if (!COMMANDS.includes(command))
      throw new UsageError(`unknown command "${command}": expected one of ${COMMANDS.join(', ')}`)
    const env = io.env ?? process.env
    if (command === 'keygen') return keygen(values, io)
    const prefix = values.prefix ?? env.BACKPLANE_CONFIG_PREFIX
    if (!prefix)
      throw new UsageError('--prefix is required (e.g. --prefix /config/orders/), or set BACKPLANE_CONFIG_PREFIX')
    if (!prefix.endsWith('/'))
      throw new UsageError(`--prefix "${prefix}": expected a prefix ending in /, e.g. /config/orders/`)
    const timeoutMs = duration('--timeout', values.timeout) ?? 5_000
    const schema = values.schema ? await loadSchema(values.schema, values.export) : undefined
    const endpoints = values.endpoints ?? env.ETCD_ENDPOINTS
    connection = await connect({ endpoints, timeout: timeoutMs }, 'backplane-config')
    const ring = ringOf(values.keys, env)
    const ctx: Context = { io, connection, prefix, timeoutMs, schema, values, ring }
    switch (command) {
      case 'get':
        return await get(ctx, args)
      case 'put':
        return await putOrDelete(ctx, args, 'put')
      case 'delete':
        return await putOrDelete(ctx, args, 'delete')
      case 'apply':
        return await apply(ctx, args)
      case 'history':
        return await history(ctx, args)
      case 'show':
        return await show(ctx, args)
      case 'rollback':
        return await rollback(ctx, args)
      case 'promote':
        return await promote(ctx, args)
      case 'abort':
        return await abort(ctx, args)
      case 'status':
        return await status(ctx, args)
      case 'reseal':
        return await reseal(ctx, args)
      case 'list':
        return await list(ctx, args)
      case 'watch':
        return await watch(ctx, args)
      default:
        return await diff(ctx, args)
    }
  } catch (error) {
    io.stderr.write(`backplane-config: ${messageOf(error)}\n`)
    if (error instanceof UsageError) {
      io.stderr.write('Run backplane-config --help for usage.\n')
      return 2
    }
    if (ConfigError.is(error) && error.code === 'CONFIG_CONFLICT') return 3
    if (ConfigError.is(error) && (error.code === 'CONFIG_INVALID' || error.message.startsWith('nothing to delete')))
      return 1
    return 2
  } finally {
    connection?.close()
  }
}

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError(messageOf(error))
  }
}

function duration(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  if (ms === undefined || Math.round(ms) < 1) throw new UsageError(`${flag} "${value}": expected ${DURATION_EXPECTED}`)
  return Math.round(ms)
}

/** Imports the app's schema module and picks the zod schema in it. */
async function loadSchema(path: string, exportName: string | undefined): Promise<z.ZodType> {
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>
  } catch (error) {
    throw new UsageError(`--schema ${path}: cannot import it: ${messageOf(error)}`)
  }
  if (exportName !== undefined) {
    const picked = mod[exportName]
    if (!isZodSchema(picked)) throw new UsageError(`--schema ${path}: export "${exportName}" is not a zod schema`)
    return picked
  }
  if (isZodSchema(mod.default)) return mod.default
  const schemas = Object.entries(mod).filter(([, v]) => isZodSchema(v))
  if (schemas.length === 1) return schemas[0]?.[1] as z.ZodType
  throw new UsageError(
    `--schema ${path}: ${schemas.length === 0 ? 'exports no zod schema' : `exports several zod schemas (${schemas.map(([k]) => k).join(', ')}): pick one with --export NAME`}`,
  )
}

async function get(ctx: Context, args: string[]): Promise<number> {
  if (args.length > 1) throw new UsageError('expected: backplane-config get [path]')
  const path = splitPath(args[0] ?? '')
  const state = await readPrefix(ctx.connection.client, ctx.prefix, ctx.timeoutMs)
  const value = getAt(treeOf(state, ctx.prefix, ctx.schema, ctx.ring), path)
  if (value === undefined) {
    ctx.io.stderr.write(`backplane-config: no value at ${args[0]} under ${ctx.prefix}\n`)
    return 1
  }
  ctx.io.stdout.write(`${json(shown(ctx, path, value))}\n`)
  return 0
}

async function list(ctx: Context, args: string[]): Promise<number> {
  arity(args, 0, 'list')
  const state = await readPrefix(ctx.connection.client, ctx.prefix, ctx.timeoutMs)
  const rows = [...state.kvs.keys()].sort().map((key) => {
    const raw = state.kvs.get(key)?.value ?? ''
    const secret = ctx.schema && !ctx.values['show-secrets'] && isSecretPath(ctx.schema, keyToPath(ctx.prefix, key))
    return [key, secret ? REDACTED : raw] as const
  })
  if (ctx.values.json) ctx.io.stdout.write(`${json(Object.fromEntries(rows))}\n`)
  else for (const [key, value] of rows) ctx.io.stdout.write(`${key} = ${value}\n`)
  return 0
}

async function watch(ctx: Context, args: string[]): Promise<number> {
  arity(args, 0, 'watch')
  const limit = positiveInt('--count', ctx.values.count)
  let printed = 0
  const signal = ctx.io.signal ?? processSignal()
  const done = new AbortController()
  let tree: ConfigTree = {}
  const check = watchCheckSchema.safeParse(ctx.values['watch-check'])
  if (!check.success)
    throw new UsageError(`--watch-check "${ctx.values['watch-check']}": ${check.error.issues[0]?.message}`)
  const mirror = new PrefixMirror(ctx.connection, ctx.prefix, {
    timeoutMs: ctx.timeoutMs,
    checkMs: check.data,
    logger: stderrLogger(ctx.io.stderr),
    onChange: (_keys, revision) => {
      const next = buildTree(mirror.kvs, ctx.prefix, ctx.schema)
      for (const change of diffTrees(tree, next)) {
        if (limit !== undefined && printed >= limit) break
        const path = change.path.join('.')
        const prev = shown(ctx, change.path, change.prev)
        const now = shown(ctx, change.path, change.next)
        ctx.io.stdout.write(
          ctx.values.json
            ? `${JSON.stringify({ revision, path, prev, next: now })}\n`
            : `rev ${revision}  ${path}: ${format(prev)} -> ${format(now)}\n`,
        )
        printed++
      }
      tree = next
      if (limit !== undefined && printed >= limit) done.abort()
    },
    onStatus: (connected, error) =>
      ctx.io.stderr.write(
        connected
          ? 'backplane-config: watching again\n'
          : `backplane-config: connection lost (${messageOf(error)}), retrying\n`,
      ),
  })
  await mirror.load()
  tree = buildTree(mirror.kvs, ctx.prefix, ctx.schema)
  ctx.io.stderr.write(
    `backplane-config: watching ${ctx.prefix} from revision ${mirror.revision + 1} (Ctrl-C to stop)\n`,
  )
  mirror.start()
  await new Promise<void>((resolveWait) => {
    if (signal.aborted) return resolveWait()
    signal.addEventListener('abort', () => resolveWait(), { once: true })
    done.signal.addEventListener('abort', () => resolveWait(), { once: true })
  })
  await mirror.close()
  return 0
}

/** Problems only (warn and error), one line each, on stderr. */
function stderrLogger(stderr: NodeJS.WritableStream): ConfigLogger {
  const line = (fields: Record<string, unknown>, message: string) => {
    const err = typeof fields.err === 'string' ? `: ${fields.err}` : ''
    stderr.write(`backplane-config: ${message}${err}\n`)
  }
  return { debug: () => {}, info: () => {}, warn: line, error: line }
}

function processSignal(): AbortSignal {
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return controller.signal
}

async function diff(ctx: Context, args: string[]): Promise<number> {
  arity(args, 1, 'diff <file>')
  const schema = ctx.schema
  const [fileTree] = await loadLayers([file(args[0] as string, { watch: false })], schema ?? z.unknown())
  const state = await readPrefix(ctx.connection.client, ctx.prefix, ctx.timeoutMs)
  const etcdTree = treeOf(state, ctx.prefix, schema, ctx.ring)
  const diffs = diffFileAndEtcd(fileTree ?? {}, etcdTree, schema, ctx.values['show-secrets'] === true)
  if (ctx.values.json) ctx.io.stdout.write(`${json(diffs)}\n`)
  else if (diffs.length === 0) ctx.io.stdout.write(`${args[0]} and etcd ${ctx.prefix} hold the same values\n`)
  else
    for (const d of diffs) {
      const line =
        d.kind === 'file-only'
          ? `- ${d.path}: ${format(d.file)}  (only in the file)`
          : d.kind === 'etcd-only'
            ? `+ ${d.path}: ${format(d.etcd)}  (only in etcd)`
            : `~ ${d.path}: ${format(d.file)} (file) -> ${format(d.etcd)} (etcd)`
      ctx.io.stdout.write(`${line}\n`)
    }
  return diffs.length === 0 ? 0 : 1
}
