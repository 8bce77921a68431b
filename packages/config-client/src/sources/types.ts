import type { z } from 'zod'
import type { ConfigLogger } from '../logger.js'
import type { ConfigTree } from '../tree.js'

/** Which release of its configuration a source delivered (the etcd source's releases). */
export interface ReleaseInfo {
  /** The current release, or the gray release this instance is in; undefined before any release. */
  readonly id: string | undefined
  /** True when `id` is a gray release this instance was chosen for. */
  readonly gray: boolean
}

/** What a source reports with a change, besides its new tree. */
export interface SourceChangeInfo {
  /** The source's own keys that changed: etcd keys, a file path, ... (for events and errors). */
  keys?: readonly string[]
  /** The source's revision after the change (etcd's store revision). */
  revision?: number
  /** The release the new tree is, for sources with releases. */
  release?: ReleaseInfo
}

/** Stops a watch. */
export type Unwatch = () => void | Promise<void>

/** Handed to a source's `load` and `watch`. */
export interface SourceContext {
  /** The app's schema: sources that read strings (env, etcd) coerce them to the type at each path. */
  readonly schema: z.ZodType
  readonly logger: ConfigLogger
  /** Report a problem that does not stop the source (a file that no longer parses): an `error` event. */
  reportError(error: unknown): void
  /**
   * Tell whether the source is currently in touch with its backend. While any source is not,
   * `config.stale` is true (a `stale` event marks each transition).
   */
  setAvailable(available: boolean, reason?: unknown): void
  /** Aborted when the config is closed. */
  readonly signal: AbortSignal
}

/**
 * A place configuration comes from. `load` returns the source's whole tree (a plain object whose
 * paths are configuration paths); `watch`, when present, calls `onChange` with the whole new tree
 * each time it changes. Built-in: `file()`, `env()`, `memory()` and, from
 * `@backplane/config-client/etcd`, `etcd()`. For config kept elsewhere, write one:
 *
 * ```ts
 * const vault: ConfigSource = {
 *   name: 'vault',
 *   load: async () => ({ db: { password: await readSecret('db') } }),
 *   watch(onChange) {
 *     const timer = setInterval(async () => onChange({ db: { password: await readSecret('db') } }), 60_000)
 *     return () => clearInterval(timer)
 *   },
 * }
 * ```
 *
 * `load` rejecting (or not answering within `startTimeout`) at start counts as the source being
 * unavailable: the config starts from the snapshot and `load` is retried until it answers.
 * Throw a ConfigError with code `CONFIG_SOURCE_FAILED` instead to fail the start for good.
 */
export interface ConfigSource {
  /** Shown in events, errors and logs, and the source's entry in the snapshot; unique per config. */
  readonly name?: string
  /**
   * What kind of source this is, the `config.source` attribute of the metrics: `file`, `env`,
   * `memory`, `etcd` for the built-in ones; default `custom`. A fixed word, never a path or an id.
   */
  readonly kind?: string
  load(context: SourceContext): ConfigTree | Promise<ConfigTree>
  watch?(
    onChange: (tree: ConfigTree, info?: SourceChangeInfo) => void,
    context: SourceContext,
  ): Unwatch | undefined | Promise<Unwatch | undefined>
  /** The source's own key for a configuration path (`/config/orders/payment/timeoutMs`), for errors. */
  keyOf?(path: readonly string[]): string | undefined
  /**
   * What the snapshot keeps of `tree` (one this source delivered); default the tree itself. The
   * etcd source keeps sealed values sealed here. Must not throw.
   */
  snapshotTree?(tree: ConfigTree): ConfigTree
  /**
   * The tree to serve from what `snapshotTree` gave, read back at a start while the source is down
   * (the etcd source opens sealed values again). Throwing makes the snapshot unusable for this source.
   */
  restoreTree?(stored: ConfigTree, context: SourceContext): ConfigTree
  /** The release `load` delivered, for sources with releases. */
  readonly release?: ReleaseInfo | undefined
  /**
   * Called with the release whose values the config now serves, after each applied update (an
   * update rejected as invalid is not served): the etcd source reports it in its instance entry.
   */
  served?(release: ReleaseInfo): void
  /**
   * When (`Date.now()`) the values this source last delivered were last known to equal its
   * backend's: the etcd source's last watch event or check, a watched file's now (while its watch
   * works and it parses). Feeds the `backplane.config.staleness` metric; without it, a source counts
   * as current while it is in touch (see `setAvailable`). Called at each metric collection: keep it cheap.
   */
  currentAsOf?(): number | undefined
  /** The source's revision after `load` (etcd's store revision), shown as `config.revision`. */
  readonly revision?: number | undefined
  /** Frees what the source holds (clients, file watchers); called by `config.close()`. */
  close?(): void | Promise<void>
}
