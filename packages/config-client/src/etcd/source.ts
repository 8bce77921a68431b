import { retrySchema } from '@backplane/internal'
import { z } from 'zod'
import { foldIntoRetry, renamed } from '../deprecated.js'
import { parseOptions } from '../options.js'
import type { ConfigSource } from '../sources/types.js'
import {
  CONNECTION_RENAMES,
  type Connection,
  connect,
  connectionShape,
  type DeprecatedConnectionOptions,
} from './client.js'
import { buildTree, keyHolding } from './keys.js'
import { PrefixMirror, WATCH_RETRY_DEFAULTS } from './mirror.js'

const etcdSourceOptionsSchema = z.strictObject({
  ...connectionShape,
  /** Keys under this prefix are the configuration: `/config/orders/payment/timeoutMs` → `payment.timeoutMs`. */
  prefix: z
    .string()
    .min(1)
    .refine((p) => p.endsWith('/'), { error: "expected a prefix ending in '/', e.g. '/config/orders/'" }),
  /**
   * Reconnect delays of the watch: 100 ms doubling up to 10 s, with full jitter. `maxAttempts`
   * does not apply: the watch reconnects for as long as the source is open.
   */
  retry: retrySchema(WATCH_RETRY_DEFAULTS).prefault({}),
  /** Name in events and the snapshot (default `etcd:<prefix>`). */
  name: z.string().min(1).optional(),
})

export type EtcdSourceOptions = z.input<typeof etcdSourceOptionsSchema> &
  DeprecatedConnectionOptions & {
    /** @deprecated use retry: { initialDelay } */
    minRetryMs?: number | undefined
    /** @deprecated use retry: { maxDelay } */
    maxRetryMs?: number | undefined
  }

const OLD_RETRY_OPTIONS = { minRetryMs: 'initialDelay', maxRetryMs: 'maxDelay' }

/**
 * Configuration kept in etcd under a prefix, watched live. Loads by listing the prefix at one
 * revision and watches from the next; after a disconnect it resumes from the last revision it saw,
 * and when etcd has compacted that revision it lists again, reports what differs and watches on.
 * Every etcd call has a timeout (`timeout`). Needs the `etcd3` package.
 */
export function etcd(options: EtcdSourceOptions): ConfigSource {
  const current = foldIntoRetry(renamed(options, CONNECTION_RENAMES, 'etcd source'), OLD_RETRY_OPTIONS, 'etcd source')
  const opts = parseOptions(etcdSourceOptionsSchema, current, 'etcd source')
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
        timeoutMs: opts.timeout,
        retry: opts.retry,
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
