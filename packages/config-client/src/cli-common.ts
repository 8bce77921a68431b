/** What every `backplane-config` command shares: its context, usage errors and output formatting. */
import type { z } from 'zod'
import { loadLayers } from './etcd/admin.js'
import type { Connection } from './etcd/client.js'
import type { PublishContext } from './etcd/publish.js'
import { isSecretPath, REDACTED, redact, schemaAt } from './schema.js'
import type { KeyRing } from './sealing/key-ring.js'
import { file } from './sources/file.js'

export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  /** Read for ETCD_ENDPOINTS and BACKPLANE_CONFIG_PREFIX. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>
  /** Ends `watch` (default: SIGINT/SIGTERM). */
  signal?: AbortSignal
}

/** Bad usage: exit status 2 and a pointer to --help. */
export class UsageError extends Error {}

export interface CliContext {
  io: CliIo
  connection: Connection
  prefix: string
  timeoutMs: number
  schema: z.ZodType | undefined
  values: Record<string, string | boolean | string[] | undefined>
  /** From --keys, else BACKPLANE_CONFIG_KEYS: seals secret fields on publish, opens them to show or validate. */
  ring: KeyRing | undefined
}

export function positiveInt(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} "${value}": expected a positive whole number`)
  return n
}

export function arity(args: string[], count: number, usage: string): void {
  if (args.length !== count) throw new UsageError(`expected: backplane-config ${usage}`)
}

export const json = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)

export const format = (value: unknown) =>
  value === undefined ? '(none)' : JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))

/** Hides secret values (with a schema and without --show-secrets). */
export function shown(ctx: CliContext, path: readonly string[], value: unknown): unknown {
  if (!ctx.schema || ctx.values['show-secrets'] || value === undefined) return value
  return isSecretPath(ctx.schema, path) ? REDACTED : redact(schemaAt(ctx.schema, path), value)
}

/** What a release-writing command needs: the schema and the file layers it validates with. */
export async function publishContext(ctx: CliContext, what: string): Promise<PublishContext> {
  if (!ctx.schema && !ctx.values['no-validate'])
    throw new UsageError(`${what} validates against the app's schema: pass --schema FILE (or --no-validate to skip)`)
  const files = (ctx.values.file as string[] | undefined) ?? []
  const layers = ctx.schema
    ? await loadLayers(
        files.map((f) => file(f, { watch: false })),
        ctx.schema,
      )
    : []
  return {
    client: ctx.connection.client,
    prefix: ctx.prefix,
    timeoutMs: ctx.timeoutMs,
    schema: ctx.values['no-validate'] ? undefined : ctx.schema,
    layers,
    keep: positiveInt('--keep', ctx.values.keep) ?? 100,
    ring: ctx.ring,
  }
}
