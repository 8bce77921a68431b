import { z } from 'zod'
import { parseOptions } from '../options.js'
import type { ConfigSource } from '../sources/types.js'
import { type Connection, connect, connectionShape } from './client.js'
import { buildTree, keyHolding } from './keys.js'
import { PrefixMirror } from './mirror.js'

const etcdSourceOptionsSchema = z.strictObject({
  ...connectionShape,
  /** Keys under this prefix are the configuration: `/config/orders/payment/timeoutMs` → `payment.timeoutMs`. */
  prefix: z
    .string()
    .min(1)
    .refine((p) => p.endsWith('/'), { error: "expected a prefix ending in '/', e.g. '/config/orders/'" }),
  /** Reconnect delays of the watch (exponential, with jitter). */
  minRetryMs: z.number().int().positive().default(100),
  maxRetryMs: z.number().int().positive().default(10_000),
  /** Name in events and the snapshot (default `etcd:<prefix>`). */
  name: z.string().min(1).optional(),
})

export type EtcdSourceOptions = z.input<typeof etcdSourceOptionsSchema>

/**
 * Configuration kept in etcd under a prefix, watched live. Loads by listing the prefix at one
 * revision and watches from the next; after a disconnect it resumes from the last revision it saw,
 * and when etcd has compacted that revision it lists again, reports what differs and watches on.
 * Every etcd call has a timeout (`timeoutMs`). Needs the `etcd3` package.
 */
export function etcd(options: EtcdSourceOptions): ConfigSource {
  const opts = parseOptions(etcdSourceOptionsSchema, options, 'etcd source')
  const name = opts.name ?? `etcd:${opts.prefix}`
  let connection: Connection | undefined
  let mirror: PrefixMirror | undefined
  let listener: ((keys: string[], revision: number) => void) | undefined
  let status: ((connected: boolean, error?: unknown) => void) | undefined

  const source: ConfigSource = {
    name,
    get revision() {
      return mirror?.revision
    },
    keyOf: (path) => (mirror ? keyHolding(mirror.kvs, opts.prefix, path) : undefined),
    async load(context) {
      connection ??= await connect(opts, `etcd source ${name}`)
      mirror ??= new PrefixMirror(connection.client, opts.prefix, {
        timeoutMs: opts.timeoutMs,
        minRetryMs: opts.minRetryMs,
        maxRetryMs: opts.maxRetryMs,
        logger: context.logger,
        onChange: (keys, revision) => listener?.(keys, revision),
        onStatus: (connected, error) => status?.(connected, error),
      })
      await mirror.load()
      return buildTree(mirror.kvs, opts.prefix, context.schema)
    },
    watch(onChange, context) {
      const current = mirror
      if (!current) throw new Error('etcd source: watch() before load()')
      listener = (keys, revision) => onChange(buildTree(current.kvs, opts.prefix, context.schema), { keys, revision })
      status = (connected, error) => context.setAvailable(connected, error)
      current.start()
      return async () => {
        listener = undefined
        status = undefined
        await current.close()
      }
    },
    async close() {
      await mirror?.close()
      connection?.close()
      connection = undefined
    },
  }
  return source
}
