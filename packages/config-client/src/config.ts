import type { z } from 'zod'
import { GuardedEmitter } from './emitter.js'
import { ConfigError, type ConfigIssue, messageOf } from './errors.js'
import { type ConfigLogger, safeLog, silentLogger } from './logger.js'
import { createConfigOptionsSchema, parseOptions } from './options.js'
import type { ConfigPath, DeepReadonly, PathValue } from './paths.js'
import { fillObjects, isSecretPath, REDACTED, redact, schemaAt } from './schema.js'
import { seal } from './seal.js'
import { SNAPSHOT_FORMAT, type SnapshotData, SnapshotStore } from './snapshot.js'
import type { ConfigSource, SourceChangeInfo, SourceContext, Unwatch } from './sources/types.js'
import { Backoff, sleep, withTimeout } from './timing.js'
import { type Change, type ConfigTree, deepEqual, diffTrees, getAt, mergeTrees, splitPath } from './tree.js'

/** Options of `createConfig`. */
export type CreateConfigOptions<S extends z.ZodType> = Omit<z.input<typeof createConfigOptionsSchema>, 'schema'> & {
  schema: S
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
  /** The sources' names, lowest precedence first. */
  readonly sourceNames: readonly string[]
  /** The configuration with secret fields replaced by `'[redacted]'`. */
  toJSON(): unknown
  /** Stops watching, closes the sources and waits for the last snapshot write. `get()` keeps working. */
  close(): Promise<void>
}

/** Errors from these codes mean the source is misconfigured, not down: no snapshot fallback for them. */
const FATAL = new Set(['CONFIG_SOURCE_FAILED', 'CONFIG_INVALID_OPTIONS', 'CONFIG_ETCD_MISSING'])

interface Slot {
  readonly name: string
  readonly source: ConfigSource
  /** The source's newest tree: what the next candidate is built from. */
  latest: ConfigTree
  /** Whether the source is in touch (false: down at start, or reconnecting). */
  available: boolean
  /** Whether `load` has succeeded at least once (false: serving the snapshot's tree or nothing). */
  live: boolean
  /** Whether the tree may go into the snapshot (not when it is a stand-in from allowDefaultsOnly). */
  snapshotable: boolean
  unwatch: Unwatch | undefined
  context: SourceContext
}

interface Batch {
  sources: string[]
  keys: string[]
  revision: number | undefined
}

/**
 * Loads every source, validates the merged configuration against `schema` and starts watching.
 * Resolves once a valid configuration is being served; rejects with a ConfigError otherwise (see
 * the README's "What happens on failure").
 */
export async function createConfig<S extends z.ZodType>(options: CreateConfigOptions<S>): Promise<Config<z.output<S>>> {
  const opts = parseOptions(createConfigOptionsSchema, options, 'createConfig')
  const config = new LiveConfig<z.output<S>>(opts)
  await config.start()
  return config
}

type ResolvedOptions = z.output<typeof createConfigOptionsSchema>

class LiveConfig<T> extends GuardedEmitter<ConfigEvents<T>> implements Config<T> {
  readonly #schema: z.ZodType
  readonly #opts: ResolvedOptions
  readonly #logger: ConfigLogger
  readonly #slots: Slot[]
  readonly #snapshot: SnapshotStore | undefined
  readonly #abort = new AbortController()
  readonly #cache = new Map<string, unknown>()
  readonly #watchers = new Set<{ path: string[]; listener: PathListener<unknown, T> }>()
  #current!: DeepReadonly<T>
  #revision: number | undefined
  #batch: Batch = { sources: [], keys: [], revision: undefined }
  #scheduled = false
  #timer: NodeJS.Timeout | undefined
  #burstStart: number | undefined
  #closed = false

  constructor(opts: ResolvedOptions) {
    super((error, event) => this.#listenerFailed(error, event))
    this.#opts = opts
    this.#schema = opts.schema
    this.#logger = opts.logger ?? silentLogger
    this.#snapshot =
      opts.snapshot === undefined ? undefined : new SnapshotStore(opts.snapshot, (error) => this.#report(error))
    const used = new Map<string, number>()
    this.#slots = opts.sources.map((source, i) => {
      const base = source.name ?? `source#${i + 1}`
      const n = (used.get(base) ?? 0) + 1
      used.set(base, n)
      const name = n === 1 ? base : `${base}#${n}`
      const slot: Slot = {
        name,
        source,
        latest: {},
        available: true,
        live: false,
        snapshotable: true,
        unwatch: undefined,
        context: undefined as unknown as SourceContext,
      }
      slot.context = this.#contextFor(slot)
      return slot
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Start

  async start(): Promise<void> {
    const results = await Promise.all(this.#slots.map((slot) => this.#load(slot)))
    const fatal = results.find((r) => !r.ok && ConfigError.is(r.error) && FATAL.has(r.error.code))
    if (fatal && !fatal.ok) {
      await this.#closeSources()
      throw fatal.error
    }
    const down = this.#slots.filter((_, i) => !results[i]?.ok)
    for (const [i, slot] of this.#slots.entries()) {
      const result = results[i]
      if (result?.ok) {
        slot.latest = result.tree
        slot.live = true
      }
    }
    if (down.length > 0) await this.#standIn(down, results)

    const result = this.#validate()
    if (!result.ok) {
      await this.#closeSources()
      throw this.#invalidError(result.error, 'the configuration at start is invalid', {
        sources: [],
        keys: [],
        revision: undefined,
      })
    }
    this.#current = seal(this.#schema, result.data) as DeepReadonly<T>
    for (const slot of this.#slots) {
      const revision = slot.live ? slot.source.revision : undefined
      if (revision !== undefined) this.#revision = revision
    }
    if (down.length === 0) this.#saveSnapshot()

    for (const slot of this.#slots) {
      if (slot.live) await this.#startWatch(slot)
      else void this.#retry(slot)
    }
  }

  /** Fills in the trees of sources that are down: from the snapshot, or empty with allowDefaultsOnly. */
  async #standIn(down: Slot[], results: LoadResult[]): Promise<void> {
    let snapshot: SnapshotData | undefined
    let snapshotProblem = this.#snapshot === undefined ? 'no snapshot option is set' : ''
    if (this.#snapshot) {
      try {
        snapshot = await this.#snapshot.read()
        if (snapshot === undefined) snapshotProblem = `there is no snapshot at ${this.#snapshot.path} yet`
      } catch (error) {
        snapshotProblem = messageOf(error)
        safeLog(this.#logger, 'warn', { err: snapshotProblem }, 'the config snapshot is unusable')
      }
    }
    const missing: Slot[] = []
    for (const slot of down) {
      const tree = snapshot?.sources[slot.name]
      slot.available = false
      if (tree !== undefined) slot.latest = tree
      else missing.push(slot)
    }
    if (missing.length > 0 && snapshot !== undefined)
      snapshotProblem = `the snapshot ${this.#snapshot?.path} has no values of ${missing.map((s) => s.name).join(', ')}`
    if (missing.length > 0 && !this.#opts.allowDefaultsOnly) {
      await this.#closeSources()
      const why = down
        .map((slot) => `${slot.name}: ${messageOf(resultError(results[this.#slots.indexOf(slot)]))}`)
        .join('; ')
      throw new ConfigError(
        'CONFIG_UNAVAILABLE',
        `cannot start: ${why}; and ${snapshotProblem}. Start the source, give a snapshot path that a previous run wrote, or set allowDefaultsOnly to start from the schema defaults`,
        { source: down[0]?.name, cause: resultError(results[this.#slots.indexOf(down[0] as Slot)]) },
      )
    }
    for (const slot of missing) {
      slot.latest = {}
      slot.snapshotable = false
    }
    safeLog(
      this.#logger,
      'warn',
      {
        unavailable: down.map((s) => s.name),
        snapshot: snapshot ? this.#snapshot?.path : undefined,
        savedAt: snapshot?.savedAt,
        defaultsFor: missing.map((s) => s.name),
      },
      snapshot
        ? 'config sources unavailable at start: serving their values from the snapshot (stale) and retrying'
        : 'config sources unavailable at start: serving schema defaults for them (stale) and retrying',
    )
  }

  async #load(slot: Slot): Promise<LoadResult> {
    try {
      const tree = await withTimeout(
        Promise.resolve().then(() => slot.source.load(slot.context)),
        this.#opts.startTimeout,
        `config source ${slot.name}`,
      )
      if (tree === null || typeof tree !== 'object' || Array.isArray(tree))
        throw new ConfigError('CONFIG_SOURCE_FAILED', `config source ${slot.name}: load() must return a plain object`, {
          source: slot.name,
        })
      return { ok: true, tree }
    } catch (error) {
      return { ok: false, error }
    }
  }

  async #startWatch(slot: Slot): Promise<void> {
    if (!slot.source.watch || this.#closed) return
    try {
      const unwatch = await slot.source.watch((tree, info) => this.#onSourceChange(slot, tree, info), slot.context)
      if (this.#closed) await unwatch?.()
      else slot.unwatch = unwatch ?? undefined
    } catch (error) {
      this.#report(
        new ConfigError('CONFIG_SOURCE_FAILED', `config source ${slot.name}: watch() failed: ${messageOf(error)}`, {
          source: slot.name,
          cause: error,
        }),
      )
    }
  }

  /** Retries a source that was down at start until it loads, then applies it and starts its watch. */
  async #retry(slot: Slot): Promise<void> {
    const backoff = new Backoff(this.#opts.retry.minDelayMs, this.#opts.retry.maxDelayMs)
    while (!this.#closed) {
      await sleep(backoff.next(), this.#abort.signal)
      if (this.#closed) return
      const result = await this.#load(slot)
      if (this.#closed) return
      if (!result.ok) {
        safeLog(
          this.#logger,
          'debug',
          { source: slot.name, err: messageOf(result.error) },
          'config source still unavailable',
        )
        continue
      }
      slot.latest = result.tree
      slot.live = true
      slot.snapshotable = true
      const revision = slot.source.revision
      this.#addToBatch(slot, { keys: ['*'], ...(revision === undefined ? {} : { revision }) })
      // Apply now, before flipping `stale`: whoever sees stale === false sees the source's values.
      this.#flushSafely()
      await this.#startWatch(slot)
      slot.context.setAvailable(true)
      return
    }
  }

  #contextFor(slot: Slot): SourceContext {
    return {
      schema: this.#opts.schema,
      logger: this.#logger,
      signal: this.#abort.signal,
      reportError: (error) => this.#report(asConfigError(error, slot.name)),
      setAvailable: (available, reason) => {
        if (this.#closed || slot.available === available) return
        // A source down since start becomes available through #retry only, after its values are applied.
        if (available && !slot.live) return
        const wasStale = this.stale
        slot.available = available
        if (!available)
          safeLog(
            this.#logger,
            'warn',
            { source: slot.name, err: reason === undefined ? undefined : messageOf(reason) },
            'config source out of touch: serving its last values',
          )
        else safeLog(this.#logger, 'info', { source: slot.name }, 'config source back in touch')
        if (wasStale !== this.stale) this.emitSafely('stale', { stale: this.stale, sources: this.unavailable })
      },
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Updates

  #onSourceChange(slot: Slot, tree: ConfigTree, info: SourceChangeInfo | undefined): void {
    if (this.#closed || !slot.live) return
    slot.latest = tree
    this.#addToBatch(slot, info)
    this.#schedule()
  }

  #addToBatch(slot: Slot, info: SourceChangeInfo | undefined): void {
    if (!this.#batch.sources.includes(slot.name)) this.#batch.sources.push(slot.name)
    for (const key of info?.keys ?? []) if (!this.#batch.keys.includes(key)) this.#batch.keys.push(key)
    if (info?.revision !== undefined) this.#batch.revision = info.revision
  }

  /**
   * Debounce. With 0 (the default), the updates delivered by one callback (all events of one etcd
   * watch response, every put made in one synchronous run) are applied together, right after it:
   * no timer, so an isolated update costs no latency.
   */
  #schedule(): void {
    const debounce = this.#opts.debounceMs
    if (debounce === 0) {
      if (this.#scheduled) return
      this.#scheduled = true
      queueMicrotask(() => this.#flushSafely())
      return
    }
    const now = Date.now()
    this.#burstStart ??= now
    const maxWait = this.#opts.maxDebounceMs ?? Math.max(1_000, debounce * 10)
    clearTimeout(this.#timer)
    this.#scheduled = true
    this.#timer = setTimeout(
      () => this.#flushSafely(),
      Math.max(0, Math.min(debounce, this.#burstStart + maxWait - now)),
    )
  }

  // Runs from a timer or microtask: an exception here would crash the process, so it is reported.
  #flushSafely(): void {
    try {
      this.#flush()
    } catch (error) {
      this.#report(
        new ConfigError('CONFIG_SOURCE_FAILED', `applying a config update failed: ${messageOf(error)}`, {
          cause: error,
        }),
      )
    }
  }

  /** Validates the merge of every source's latest tree and, if valid, serves it: atomically, in one step. */
  #flush(): void {
    clearTimeout(this.#timer)
    this.#scheduled = false
    this.#burstStart = undefined
    const batch = this.#batch
    this.#batch = { sources: [], keys: [], revision: undefined }
    if (this.#closed || batch.sources.length === 0) return

    const result = this.#validate()
    if (!result.ok) {
      const error = this.#invalidError(result.error, 'update rejected', batch)
      safeLog(
        this.#logger,
        'warn',
        { sources: batch.sources, keys: batch.keys, revision: batch.revision, issues: error.details },
        'config update rejected: it does not satisfy the schema; the previous configuration stays in force',
      )
      this.emitSafely('invalid', error)
      return
    }
    if (batch.revision !== undefined) this.#revision = batch.revision
    const prev = this.#current
    const rawChanges = diffTrees(prev, result.data)
    if (rawChanges.length > 0) {
      const next = seal(this.#schema, result.data) as DeepReadonly<T>
      this.#current = next
      this.#cache.clear()
      const changes = rawChanges.map((c): Change => {
        const secret = isSecretPath(this.#schema, c.path)
        const kind = c.prev === undefined ? 'add' : c.next === undefined ? 'remove' : 'update'
        const at = schemaAt(this.#schema, c.path)
        const shown = (v: unknown) => (secret && v !== undefined ? REDACTED : redact(at, v))
        return { path: c.path.join('.'), kind, prev: shown(c.prev), next: shown(c.next), secret }
      })
      const event: ChangeEvent<T> = {
        next,
        prev,
        changes,
        source: batch.sources[batch.sources.length - 1] as string,
        sources: batch.sources,
        keys: batch.keys,
        revision: batch.revision ?? this.#revision,
      }
      if (this.#logger !== silentLogger)
        safeLog(
          this.#logger,
          'info',
          { sources: batch.sources, revision: event.revision, changes },
          `config updated: ${changes.length} value(s) changed`,
        )
      this.emitSafely('change', event)
      this.#notifyWatchers(prev, next, event)
    }
    this.#saveSnapshot()
  }

  #validate(): { ok: true; data: unknown } | { ok: false; error: z.ZodError } {
    const input = fillObjects(this.#schema, mergeTrees(this.#slots.map((s) => s.latest)))
    const result = this.#schema.safeParse(input)
    return result.success ? { ok: true, data: result.data } : { ok: false, error: result.error }
  }

  #invalidError(error: z.ZodError, what: string, batch: Batch): ConfigError {
    const issues: ConfigIssue[] = error.issues.map((issue) => {
      const path = issue.path.map(String)
      const origin = this.#originOf(path)
      return { path: path.join('.'), message: issue.message, code: issue.code, ...origin }
    })
    const details = issues.map(
      (i) =>
        `${i.path || '(root)'}: ${i.message}${i.source ? ` (from ${i.source}${i.key && i.key !== i.path ? ` ${i.key}` : ''})` : ''}`,
    )
    const trigger = batch.sources.length > 0 ? ` from ${batch.sources.join(', ')}` : ''
    return new ConfigError('CONFIG_INVALID', `${what}${trigger}: ${details.join('; ')}`, {
      details,
      issues,
      source: batch.sources[batch.sources.length - 1],
      keys: batch.keys,
      revision: batch.revision,
      cause: error,
    })
  }

  /** Which source supplies the value at `path` (the highest-precedence one holding it), and its key. */
  #originOf(path: string[]): { source: string | undefined; key: string | undefined } {
    for (let i = this.#slots.length - 1; i >= 0; i--) {
      const slot = this.#slots[i] as Slot
      if (getAt(slot.latest, path) !== undefined)
        return { source: slot.name, key: slot.source.keyOf?.(path) ?? path.join('.') }
    }
    return { source: undefined, key: undefined }
  }

  #notifyWatchers(prev: DeepReadonly<T>, next: DeepReadonly<T>, event: ChangeEvent<T>): void {
    for (const watcher of [...this.#watchers]) {
      const before = getAt(prev, watcher.path)
      const after = getAt(next, watcher.path)
      if (deepEqual(before, after)) continue
      try {
        watcher.listener(after as never, before as never, event)
      } catch (error) {
        this.#listenerFailed(error, `watch('${watcher.path.join('.')}')`)
      }
    }
  }

  #saveSnapshot(): void {
    if (!this.#snapshot || this.#closed) return
    const sources: Record<string, ConfigTree> = {}
    for (const slot of this.#slots) if (slot.snapshotable) sources[slot.name] = slot.latest
    this.#snapshot.write({
      format: SNAPSHOT_FORMAT,
      version: 1,
      savedAt: new Date().toISOString(),
      ...(this.#revision === undefined ? {} : { revision: this.#revision }),
      sources,
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Errors

  #report(error: ConfigError): void {
    safeLog(
      this.#logger,
      'warn',
      { code: error.code, source: error.source, err: error.message },
      'config client problem',
    )
    this.emitSafely('error', error)
  }

  #listenerFailed(error: unknown, event: string): void {
    const wrapped = new ConfigError(
      'CONFIG_LISTENER_FAILED',
      `a config ${event} listener threw: ${messageOf(error)} (the other listeners and the watch go on)`,
      { cause: error },
    )
    safeLog(this.#logger, 'error', { event, err: messageOf(error) }, 'config listener threw')
    // An `error` listener that throws is only logged: reporting it as `error` again would loop.
    if (event !== 'error') this.emitSafely('error', wrapped)
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  get(): DeepReadonly<T>
  get<P extends ConfigPath<T>>(path: P): DeepReadonly<PathValue<T, P>>
  get(path?: string): unknown {
    if (path === undefined) return this.#current
    // Served objects are frozen, so a path's value can be kept until the next applied update.
    const hit = this.#cache.get(path)
    if (hit !== undefined) return hit
    const value = getAt(this.#current, splitPath(path))
    this.#cache.set(path, value)
    return value
  }

  watch<P extends ConfigPath<T>>(path: P, listener: PathListener<PathValue<T, P>, T>): () => void {
    if (typeof path !== 'string' || typeof listener !== 'function')
      throw new ConfigError('CONFIG_INVALID_OPTIONS', 'watch(path, listener): expected a dotted path and a function', {
        details: ['path: expected a string such as "payment.timeoutMs"', 'listener: expected a function'],
      })
    const entry = { path: splitPath(path), listener: listener as unknown as PathListener<unknown, T> }
    this.#watchers.add(entry)
    return () => {
      this.#watchers.delete(entry)
    }
  }

  get stale(): boolean {
    return this.#slots.some((s) => !s.available)
  }

  get unavailable(): readonly string[] {
    return this.#slots.filter((s) => !s.available).map((s) => s.name)
  }

  get revision(): number | undefined {
    return this.#revision
  }

  get sourceNames(): readonly string[] {
    return this.#slots.map((s) => s.name)
  }

  toJSON(): unknown {
    return redact(this.#schema, this.#current)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#abort.abort()
    clearTimeout(this.#timer)
    await this.#closeSources()
    await this.#snapshot?.flush()
  }

  async #closeSources(): Promise<void> {
    this.#closed = true
    this.#abort.abort()
    await Promise.all(
      this.#slots.map(async (slot) => {
        try {
          await slot.unwatch?.()
          slot.unwatch = undefined
          await slot.source.close?.()
        } catch (error) {
          safeLog(this.#logger, 'warn', { source: slot.name, err: messageOf(error) }, 'closing a config source failed')
        }
      }),
    )
  }
}

type LoadResult = { ok: true; tree: ConfigTree } | { ok: false; error: unknown }

function resultError(result: LoadResult | undefined): unknown {
  return result && !result.ok ? result.error : undefined
}

function asConfigError(error: unknown, source: string): ConfigError {
  if (ConfigError.is(error)) return error
  return new ConfigError('CONFIG_SOURCE_FAILED', `config source ${source}: ${messageOf(error)}`, {
    source,
    cause: error,
  })
}
