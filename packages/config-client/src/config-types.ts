import type { z } from 'zod'
import type { ConfigError } from './errors.js'
import type { createConfigOptionsSchema, StartRetryOptions } from './options.js'
import type { ConfigPath, DeepReadonly, PathValue } from './paths.js'
import type { ReleaseInfo } from './sources/types.js'
import type { Change } from './tree.js'

/** Options of `createConfig`. */
export type CreateConfigOptions<S extends z.ZodType> = Omit<
  z.input<typeof createConfigOptionsSchema>,
  'schema' | 'retry'
> & {
  schema: S
  /** Retries of a source that was unavailable at start: `{ maxAttempts, initialDelay, maxDelay, factor, jitter }`. */
  retry?: StartRetryOptions | undefined
  /** @deprecated use debounce */
  debounceMs?: number | undefined
  /** @deprecated use maxDebounce */
  maxDebounceMs?: number | undefined
}

/** Payload of the `change` event: one applied update. */
export interface ChangeEvent<T> {
  /** The configuration now served. Serializing it redacts secret fields. */
  readonly next: DeepReadonly<T>
  /** The configuration served before. */
  readonly prev: DeepReadonly<T>
  /** Every changed leaf value, with its old and new value; secret values shown as `'[redacted]'`. */
  readonly changes: readonly Change[]
  /** The source whose update was applied (the last one, when a debounced batch held several). */
  readonly source: string
  /** Every source with an update in this batch. */
  readonly sources: readonly string[]
  /** The sources' own keys that changed (etcd keys, file paths, ...). */
  readonly keys: readonly string[]
  /** etcd's store revision after this update, when etcd was part of it. */
  readonly revision: number | undefined
}

/** Payload of the `stale` event. */
export interface StaleEvent {
  /** True while some source is out of touch (down at start, or its watch is reconnecting). */
  readonly stale: boolean
  /** The sources currently out of touch. */
  readonly sources: readonly string[]
}

/** Events of a Config. A listener that throws is reported as `error` and affects nothing else. */
export interface ConfigEvents<T> {
  change: (event: ChangeEvent<T>) => void
  /** An update was rejected (code CONFIG_INVALID); the previous configuration stays in force. */
  invalid: (error: ConfigError) => void
  /** A source problem, a failed snapshot write, or a listener that threw. */
  error: (error: ConfigError) => void
  stale: (event: StaleEvent) => void
}

/** A listener of `config.watch(path, listener)`. */
export type PathListener<V, T> = (next: DeepReadonly<V>, prev: DeepReadonly<V>, event: ChangeEvent<T>) => void

/** The live configuration returned by `createConfig`. */
export interface Config<T> {
  /** The whole configuration: typed, frozen, always valid. */
  get(): DeepReadonly<T>
  /** The value at a dotted path, e.g. `get('payment.timeoutMs')`. */
  get<P extends ConfigPath<T>>(path: P): DeepReadonly<PathValue<T, P>>
  /**
   * Calls `listener(next, prev, event)` after each applied update that changed the value at `path`
   * (a leaf, or anything inside a subtree). Returns a function that stops it.
   */
  watch<P extends ConfigPath<T>>(path: P, listener: PathListener<PathValue<T, P>, T>): () => void
  on<E extends keyof ConfigEvents<T>>(event: E, listener: ConfigEvents<T>[E]): this
  once<E extends keyof ConfigEvents<T>>(event: E, listener: ConfigEvents<T>[E]): this
  off<E extends keyof ConfigEvents<T>>(event: E, listener?: ConfigEvents<T>[E]): this
  /** True while the configuration may be behind a source: started from the snapshot, or a watch is reconnecting. */
  readonly stale: boolean
  /** Names of the sources currently out of touch. */
  readonly unavailable: readonly string[]
  /** etcd's store revision of the configuration served, when an etcd source is used. */
  readonly revision: number | undefined
  /**
   * The release served (etcd source releases): the current release, or the gray release this
   * instance is in (`gray: true`); undefined without releases. An update rejected as invalid does
   * not change it.
   */
  readonly release: ReleaseInfo | undefined
  /** The sources' names, lowest precedence first. */
  readonly sourceNames: readonly string[]
  /** The configuration with secret fields replaced by `'[redacted]'`. */
  toJSON(): unknown
  /** Stops watching, closes the sources and waits for the last snapshot write. `get()` keeps working. */
  close(): Promise<void>
}
