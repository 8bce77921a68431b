import { backoffSequence, sleep } from '@backplane/internal'
import type { z } from 'zod'
import type { ChangeEvent, Config, ConfigEvents, CreateConfigOptions, PathListener } from './config-types.js'
import { Debouncer } from './debounce.js'
import { GuardedEmitter } from './emitter.js'
import { ConfigError, listenerFailure, messageOf } from './errors.js'
import { type ConfigLogger, safeLog, silentLogger } from './logger.js'
import { recordSourceError, recordUpdates, trackSlots, untrackSlots } from './metrics.js'
import { createConfigOptionsSchema, parseOptions, renameCreateConfigOptions } from './options.js'
import { PathWatchers } from './path-watchers.js'
import type { ConfigPath, DeepReadonly, PathValue } from './paths.js'
import { redact } from './schema.js'
import { seal } from './seal.js'
import {
  asConfigError,
  closeSource,
  FATAL,
  type LoadResult,
  loadSource,
  markServed,
  originOf,
  resultError,
  type Slot,
  servedRelease,
  snapshotOf,
  sourceNames,
  treeFromSnapshot,
} from './slots.js'
import { type SnapshotData, SnapshotStore } from './snapshot.js'
import type { ReleaseInfo, SourceChangeInfo, SourceContext } from './sources/types.js'
import { type ConfigTree, getAt, splitPath } from './tree.js'
import { type Batch, describeChanges, invalidError, type Validation, validateMerged } from './validation.js'

export type {
  ChangeEvent,
  Config,
  ConfigEvents,
  CreateConfigOptions,
  PathListener,
  StaleEvent,
} from './config-types.js'

/**
 * Loads every source, validates the merged configuration against `schema` and starts watching.
 * Resolves once a valid configuration is being served; rejects with a ConfigError otherwise (see
 * the README's "What happens on failure").
 */
export async function createConfig<S extends z.ZodType>(options: CreateConfigOptions<S>): Promise<Config<z.output<S>>> {
  const opts = parseOptions(createConfigOptionsSchema, renameCreateConfigOptions(options), 'createConfig')
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
  readonly #watchers = new PathWatchers<T>((error, event) => this.#listenerFailed(error, event))
  #current!: DeepReadonly<T>
  #revision: number | undefined
  #batch: Batch = { sources: [], keys: [], revision: undefined }
  readonly #debouncer: Debouncer
  #closed = false

  constructor(opts: ResolvedOptions) {
    super((error, event) => this.#listenerFailed(error, event))
    this.#opts = opts
    this.#schema = opts.schema
    this.#logger = opts.logger ?? silentLogger
    this.#debouncer = new Debouncer(opts.debounce, opts.maxDebounce, () => this.#flushSafely())
    this.#snapshot =
      opts.snapshot === undefined ? undefined : new SnapshotStore(opts.snapshot, (error) => this.#report(error))
    const names = sourceNames(opts.sources)
    this.#slots = opts.sources.map((source, i) => {
      const name = names[i] as string
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
    const results = await Promise.all(this.#slots.map((slot) => loadSource(slot, this.#opts.startTimeout)))
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
        slot.release = slot.source.release
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
    markServed(this.#slots)
    for (const slot of this.#slots) {
      const revision = slot.live ? slot.source.revision : undefined
      if (revision !== undefined) this.#revision = revision
    }
    if (down.length === 0) this.#saveSnapshot()
    trackSlots(this.#slots)
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
      const tree = treeFromSnapshot(slot, snapshot, this.#logger)
      slot.available = false
      slot.staleSince = (tree !== undefined && Date.parse(snapshot?.savedAt ?? '')) || Date.now()
      if (tree !== undefined) slot.latest = tree
      else missing.push(slot)
    }
    if (missing.length > 0 && snapshot !== undefined)
      snapshotProblem = `the snapshot ${this.#snapshot?.path} has no usable values of ${missing.map((s) => s.name).join(', ')}`
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

  async #startWatch(slot: Slot): Promise<void> {
    if (!slot.source.watch || this.#closed) return
    try {
      const unwatch = await slot.source.watch((tree, info) => this.#onSourceChange(slot, tree, info), slot.context)
      if (this.#closed) await unwatch?.()
      else slot.unwatch = unwatch ?? undefined
    } catch (error) {
      const message = `config source ${slot.name}: watch() failed: ${messageOf(error)}`
      this.#report(
        recordSourceError(slot, new ConfigError('CONFIG_SOURCE_FAILED', message, { source: slot.name, cause: error })),
      )
    }
  }

  /**
   * Retries a source that was down at start until it loads, then applies it and starts its watch.
   * After `retry.maxAttempts` loads in all (for ever by default) it gives up and reports why.
   */
  async #retry(slot: Slot): Promise<void> {
    const backoff = backoffSequence(this.#opts.retry)
    let attempts = 1 // the load at start
    while (!this.#closed) {
      if (attempts >= this.#opts.retry.maxAttempts) {
        const message = `config source ${slot.name}: still unavailable after ${attempts} attempts; no more retries (retry.maxAttempts)`
        this.#report(recordSourceError(slot, new ConfigError('CONFIG_UNAVAILABLE', message, { source: slot.name })))
        return
      }
      await sleep(backoff.next(), this.#abort.signal)
      attempts += 1
      if (this.#closed) return
      const result = await loadSource(slot, this.#opts.startTimeout)
      if (this.#closed) return
      if (!result.ok) {
        const err = messageOf(result.error)
        safeLog(this.#logger, 'debug', { source: slot.name, err }, 'config source still unavailable')
        continue
      }
      slot.latest = result.tree
      slot.live = true
      slot.snapshotable = true
      slot.release = slot.source.release
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
      reportError: (error) => this.#report(recordSourceError(slot, asConfigError(error, slot.name))),
      setAvailable: (available, reason) => {
        if (this.#closed || slot.available === available) return
        // A source down since start becomes available through #retry only, after its values are applied.
        if (available && !slot.live) return
        const wasStale = this.stale
        slot.available = available
        slot.staleSince = available ? undefined : Date.now()
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
    if (info?.release) slot.release = info.release
    this.#addToBatch(slot, info)
    this.#debouncer.schedule()
  }

  #addToBatch(slot: Slot, info: SourceChangeInfo | undefined): void {
    if (!this.#batch.sources.includes(slot.name)) this.#batch.sources.push(slot.name)
    for (const key of info?.keys ?? []) if (!this.#batch.keys.includes(key)) this.#batch.keys.push(key)
    if (info?.revision !== undefined) this.#batch.revision = info.revision
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
    this.#debouncer.reset()
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
      recordUpdates(this.#slots, batch.sources, 'rejected')
      this.emitSafely('invalid', error)
      return
    }
    if (batch.revision !== undefined) this.#revision = batch.revision
    markServed(this.#slots)
    recordUpdates(this.#slots, batch.sources, 'applied')
    const prev = this.#current
    const changes = describeChanges(this.#schema, prev, result.data)
    if (changes.length > 0) {
      const next = seal(this.#schema, result.data) as DeepReadonly<T>
      this.#current = next
      this.#cache.clear()
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
      this.#watchers.notify(prev, next, event)
    }
    this.#saveSnapshot()
  }

  #validate(): Validation {
    return validateMerged(
      this.#schema,
      this.#slots.map((s) => s.latest),
    )
  }

  #invalidError(error: z.ZodError, what: string, batch: Batch): ConfigError {
    return invalidError(error, what, batch, (path) => originOf(this.#slots, path))
  }

  #saveSnapshot(): void {
    if (!this.#snapshot || this.#closed) return
    this.#snapshot.write(snapshotOf(this.#slots, this.#revision))
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
    safeLog(this.#logger, 'error', { event, err: messageOf(error) }, 'config listener threw')
    // An `error` listener that throws is only logged: reporting it as `error` again would loop.
    if (event !== 'error') this.emitSafely('error', listenerFailure(error, event))
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
    return this.#watchers.add(path, listener)
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

  get release(): ReleaseInfo | undefined {
    return servedRelease(this.#slots)
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
    this.#debouncer.reset()
    await this.#closeSources()
    await this.#snapshot?.flush()
  }

  async #closeSources(): Promise<void> {
    this.#closed = true
    this.#abort.abort()
    untrackSlots(this.#slots)
    await Promise.all(this.#slots.map((slot) => closeSource(slot, this.#logger)))
  }
}
