import { retrySchema } from '@backplane/internal'
import { z } from 'zod'
import { foldIntoRetry, renamed } from '../deprecated.js'
import { ConfigError, messageOf } from '../errors.js'
import { type ConfigLogger, safeLog, silentLogger } from '../logger.js'
import { recordWatchRestart } from '../metrics.js'
import { parseOptions } from '../options.js'
import { keysOptionSchema, ringFromOption } from '../sealing/key-ring.js'
import { SealedTrees } from '../sealing/sealed-trees.js'
import type { ConfigSource } from '../sources/types.js'
import type { ConfigTree } from '../tree.js'
import {
  CONNECTION_RENAMES,
  type Connection,
  connect,
  connectionShape,
  type DeprecatedConnectionOptions,
} from './client.js'
import { keyHolding, prefixSchema } from './keys.js'
import { PrefixMirror, WATCH_RETRY_DEFAULTS, watchCheckSchema } from './mirror.js'
import type { Registration } from './registry.js'
import { instanceSchema, ReleaseFollower } from './release-follower.js'

const etcdSourceOptionsSchema = z.strictObject({
  ...connectionShape,
  /** Keys under this prefix are the configuration: `/config/orders/payment/timeoutMs` → `payment.timeoutMs`. */
  prefix: prefixSchema,
  /**
   * Reconnect delays of the watch: 100 ms doubling up to 10 s, with full jitter. `maxAttempts`
   * does not apply: the watch reconnects for as long as the source is open.
   */
  retry: retrySchema(WATCH_RETRY_DEFAULTS).prefault({}),
  /** How often the live watch is checked against etcd (a silent or black-holed watch is replaced); 0: never. */
  watchCheck: watchCheckSchema,
  /** Name in events and the snapshot (default `etcd:<prefix>`). */
  name: z.string().min(1).optional(),
  /**
   * Key ring that opens sealed values: a ring, or the path of its file. Default: the
   * BACKPLANE_CONFIG_KEYS environment variable (the ring's JSON or its path), if set.
   */
  keys: keysOptionSchema,
  /** Who this process is, for gray releases and `backplane-config status`: `{ id, labels, address }`. */
  instance: instanceSchema,
  /**
   * Follow releases (default true): serve a gray release's values when this instance is in it, and
   * report the release served (`config.release`, the instance entry). false: the keys alone.
   */
  releases: z.boolean().default(true),
  /**
   * The app's own service registration (from `register()`): its metadata also says which release
   * runs (`config: { prefix, release, gray }`), and its instance id and `metadata.labels` are the
   * defaults of `instance`.
   */
  registration: z
    .custom<Registration>((v) => typeof (v as Registration)?.update === 'function', {
      error: 'expected a Registration from register()',
    })
    .optional(),
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
  const ring = ringFromOption(opts.keys, `etcd source ${name}`)
  let logger: ConfigLogger = silentLogger
  const trees = new SealedTrees(opts.prefix, ring, () => logger)
  let connection: Connection | undefined
  let mirror: PrefixMirror | undefined
  let follower: ReleaseFollower | undefined
  // The keys the gray release this instance was in overrode: reported as changed when it leaves.
  let grayKeys: string[] = []
  let grayId: string | undefined
  let listener: ((keys: string[], revision: number) => void) | undefined
  let status: ((connected: boolean, error?: unknown) => void) | undefined
  // When the copy of the prefix was last known equal to etcd: the staleness metric.
  let currentAt: number | undefined

  const source: ConfigSource = {
    name,
    kind: 'etcd',
    currentAsOf: () => currentAt,
    get revision() {
      return mirror?.revision
    },
    get release() {
      return follower?.release
    },
    served: (release) => follower?.served(release),
    keyOf: (path) => (mirror ? keyHolding(mirror.kvs, opts.prefix, path) : undefined),
    snapshotTree: (tree) => trees.sealedForm(tree),
    restoreTree: (stored, context) => trees.restore(stored, context.schema),
    async load(context) {
      logger = context.logger
      connection ??= await connect(opts, `etcd source ${name}`)
      mirror ??= new PrefixMirror(connection, opts.prefix, {
        timeoutMs: opts.timeout,
        checkMs: opts.watchCheck,
        retry: opts.retry,
        logger: context.logger,
        onChange: (keys, revision) => listener?.(keys, revision),
        onStatus: (connected, error) => status?.(connected, error),
        onCurrent: () => {
          currentAt = Date.now()
        },
        onRestart: recordWatchRestart,
      })
      if (opts.releases)
        follower ??= new ReleaseFollower({
          registration: opts.registration,
          connection,
          connectionOptions: opts,
          prefix: opts.prefix,
          instance: opts.instance,
          timeoutMs: opts.timeout,
          checkMs: opts.watchCheck,
          logger: () => logger,
        })
      await Promise.all([mirror.load(), follower?.load()])
      // A release that changed keys too (a promote) must not be seen before its keys are.
      if (follower && follower.revision > mirror.revision) await mirror.load()
      return trees.build(follower ? follower.overlay(mirror.kvs) : mirror.kvs, context.schema)
    },
    watch(onChange, context) {
      const current = mirror
      if (!current) throw new Error('etcd source: watch() before load()')
      listener = (keys, revision) => {
        let tree: ConfigTree
        try {
          tree = trees.build(follower ? follower.overlay(current.kvs) : current.kvs, context.schema)
        } catch (error) {
          // Like an invalid update: reported, not applied; the config keeps its last good values.
          context.reportError(
            new ConfigError(
              sealedOrFailed(error),
              `update from ${name} at revision ${revision} ignored: ${messageOf(error)}`,
              {
                source: name,
                keys,
                revision,
                cause: error,
              },
            ),
          )
          return
        }
        onChange(tree, { keys, revision, ...(follower ? { release: follower.release } : {}) })
      }
      grayKeys = follower?.grayKeys ?? []
      grayId = follower?.release.gray ? follower.release.id : undefined
      follower?.start((revision) => void releaseChanged(current, revision))
      status = (connected, error) => context.setAvailable(connected, error)
      current.start()
      return async () => {
        listener = undefined
        status = undefined
        await Promise.all([current.close(), follower?.close()])
      }
    },
    async close() {
      await Promise.all([mirror?.close(), follower?.close()])
      connection?.close()
      connection = undefined
    },
  }
  /**
   * The release keys changed at `revision`. When the gray release this instance is in changed
   * (joined, left, promoted), what it sees changed: the prefix is read again first if its watch is
   * behind (a promote writes the keys in the same transaction), then the tree goes out. Otherwise
   * only the current release's id moved: the keys of that release come through the prefix's watch,
   * which reports the new id with them; if that watch already passed `revision`, the id goes now.
   */
  async function releaseChanged(current: PrefixMirror, revision: number): Promise<void> {
    const before = grayKeys
    const grayBefore = grayId
    grayKeys = follower?.grayKeys ?? []
    grayId = follower?.release.gray ? follower.release.id : undefined
    if (grayId === grayBefore && current.revision < revision) return
    if (current.revision < revision) {
      try {
        await current.load()
      } catch (error) {
        // Its own watch catches up; the overrides go on top of what it has meanwhile.
        const err = messageOf(error)
        safeLog(logger, 'debug', { source: name, err }, 'etcd source: re-reading after a release failed')
      }
    }
    listener?.([...new Set([...before, ...grayKeys])], Math.max(current.revision, revision))
  }
  return source
}

function sealedOrFailed(error: unknown): 'CONFIG_SEALED' | 'CONFIG_SOURCE_FAILED' {
  return ConfigError.is(error) && error.code === 'CONFIG_SEALED' ? 'CONFIG_SEALED' : 'CONFIG_SOURCE_FAILED'
}
