/**
 * A local copy of every key under an etcd prefix, kept equal to etcd: list at a revision, watch from
 * the next one, resume after a disconnect from the last revision seen, and re-list (then watch
 * again) when etcd cancels the watch, e.g. because that revision was compacted meanwhile.
 *
 * etcd3's own reconnect is not used: it drops a watcher for good on a compaction cancel, resumes
 * from the revision in the `created` header (which can skip events still being replayed), and its
 * `create()` never settles while etcd is down. Each attempt here is one watcher with a timeout; a
 * broken one is cancelled and replaced.
 *
 * A watch can also stop delivering without any error: a black-holed connection (a dead NAT entry,
 * a firewall dropping the flow) or a stream that went quiet (etcd3 #72, #78, #153). So a live watch
 * is checked every `checkMs` with a small read of the prefix: a read that does not answer means the
 * connection is dead; a read showing changes the watch has not delivered by the next check means
 * the stream is silent. Either way the watcher is replaced (on a new connection when the client is
 * ours) and resumes from the last revision. etcd's own progress requests cannot serve: etcd 3.4
 * answers them with watch id -1, which etcd3 cannot route (it throws from its stream handler).
 */
import { type Backoff, backoffSequence, durationSchema, sleep, withTimeout } from '@backplane/internal'
import type { IRangeResponse, IWatchResponse, Watcher } from 'etcd3'
import { messageOf, timedOut } from '../errors.js'
import { type ConfigLogger, safeLog } from '../logger.js'
import type { WatchRestartReason } from '../metrics.js'
import type { Connection } from './client.js'

export interface MirrorOptions {
  timeoutMs: number
  /** How often a live watch is checked against etcd, in ms (default 30 s); 0: never. */
  checkMs?: number
  /** Reconnect delays of the watch (default 100 ms doubling up to 10 s, full jitter). */
  retry?: Pick<Backoff, 'initialDelay' | 'maxDelay' | 'factor' | 'jitter'>
  logger: ConfigLogger
  /** Keys that changed (added, updated or removed) and the revision the copy now reflects. */
  onChange(keys: string[], revision: number, reason: 'watch' | 'resync'): void
  /** The watch is (re)connected, or lost. */
  onStatus?(connected: boolean, error?: unknown): void
  /** The copy is known equal to etcd as of now: a list, a watch response up to etcd's revision, a check in step. */
  onCurrent?(): void
  /** A watcher broke or was given up, and another one replaces it. */
  onRestart?(reason: WatchRestartReason): void
}

const RESTART_REASONS: Record<Exclude<Outcome['kind'], 'closed'>, WatchRestartReason> = {
  canceled: 'canceled',
  disconnected: 'disconnected',
  timeout: 'unreachable',
  dead: 'unreachable',
  silent: 'silent',
}

/** Reconnect delays of a watch: what the etcd source and discover() use unless told otherwise. */
export const WATCH_RETRY_DEFAULTS: Backoff = {
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelay: 100,
  maxDelay: 10_000,
  factor: 2,
  jitter: 'full',
}

/**
 * How often a live watch is checked: a silent watch is noticed within two checks of the first
 * change it missed, for one small read per watch every 30 s (~15 s is when gRPC keepalive already
 * drops a dead connection of a client we built).
 */
export const WATCH_CHECK_DEFAULT = 30_000

/** The `watchCheck` option of the etcd source, discover() and the CLI: a duration, 0 for never. */
export const watchCheckSchema = durationSchema()
  .refine((ms) => ms === 0 || ms >= 100, { error: 'expected 0 (never) or a duration of at least 100 ms' })
  .default(WATCH_CHECK_DEFAULT)

type Outcome = {
  kind: 'canceled' | 'disconnected' | 'timeout' | 'closed' | 'dead' | 'silent'
  error?: unknown
}

/** A check found etcd ahead of the watch: it must have delivered `needed` by the next check. */
type Suspicion = { revision: number; needed: number }

export class PrefixMirror {
  /** key → value (utf8), as of `revision`. */
  kvs = new Map<string, string>()
  /** The store revision the copy reflects: the list's revision, then the last event's. */
  revision = 0
  readonly #connection: Connection
  readonly #prefix: string
  readonly #opts: MirrorOptions
  readonly #abort = new AbortController()
  #stopCurrent: (() => void) | undefined
  #running: Promise<void> | undefined
  // In touch as of the list; a watch that then fails to connect (or breaks) makes it false.
  #connected = true

  constructor(connection: Connection, prefix: string, options: MirrorOptions) {
    this.#connection = connection
    this.#prefix = prefix
    this.#opts = options
  }

  /** Lists the prefix (with a timeout) and replaces the copy; returns the keys that differ from before. */
  async load(): Promise<string[]> {
    const res = await withTimeout(
      this.#connection.client
        .getAll()
        .prefix(this.#prefix)
        .options({ deadline: Date.now() + this.#opts.timeoutMs })
        .exec(),
      this.#opts.timeoutMs,
      () => timedOut(`etcd (listing ${this.#prefix})`, this.#opts.timeoutMs),
    )
    const next = new Map<string, string>()
    for (const kv of res.kvs) next.set(kv.key.toString(), kv.value.toString())
    const changed = new Set<string>()
    for (const [key, value] of next) if (this.kvs.get(key) !== value) changed.add(key)
    for (const key of this.kvs.keys()) if (!next.has(key)) changed.add(key)
    this.kvs = next
    this.revision = Number(res.header.revision)
    this.#hook(() => this.#opts.onCurrent?.())
    return [...changed]
  }

  /** Starts watching from `revision + 1`; runs until `close()`. Never throws: problems go to onStatus and the log. */
  start(): void {
    this.#running ??= this.#run()
  }

  async close(): Promise<void> {
    this.#abort.abort()
    this.#stopCurrent?.()
    await this.#running
  }

  get connected(): boolean {
    return this.#connected
  }

  async #run(): Promise<void> {
    const backoff = backoffSequence(this.#opts.retry ?? WATCH_RETRY_DEFAULTS)
    let delay = 0
    while (!this.#abort.signal.aborted) {
      if (delay > 0) await sleep(delay, this.#abort.signal)
      if (this.#abort.signal.aborted) return
      const wasConnected = this.#connected
      const outcome = await this.#watchOnce(() => backoff.reset())
      if (outcome.kind === 'closed' || this.#abort.signal.aborted) return
      const reason = RESTART_REASONS[outcome.kind]
      this.#hook(() => this.#opts.onRestart?.(reason))
      if (outcome.kind === 'canceled') {
        // etcd refused our start revision (compacted) or dropped the watch: the events in between
        // are gone, so compare a fresh list with the copy instead, then watch from its revision.
        safeLog(
          this.#opts.logger,
          'warn',
          { prefix: this.#prefix, revision: this.revision, err: messageOf(outcome.error) },
          'etcd cancelled the watch (revision compacted?): re-listing the prefix',
        )
        try {
          await this.#resync()
          delay = 0
          continue
        } catch (error) {
          outcome.error = error
        }
      }
      this.#setConnected(false, outcome.error)
      // Right after losing a healthy watch, try again at once: most cuts are a single connection.
      delay = wasConnected ? 0 : backoff.next()
      // A connection that did not answer may be black-holed, and the client would keep using it:
      // take a new one. (A caller's client cannot be replaced: its own keepalive has to notice.)
      if (outcome.kind === 'dead' || outcome.kind === 'silent' || outcome.kind === 'timeout') this.#connection.renew()
      safeLog(
        this.#opts.logger,
        outcome.kind === 'dead' || outcome.kind === 'silent' ? 'warn' : 'debug',
        { prefix: this.#prefix, kind: outcome.kind, err: messageOf(outcome.error), retryInMs: delay },
        outcome.kind === 'silent'
          ? 'etcd watch went silent: watching again from the last revision'
          : outcome.kind === 'dead'
            ? 'etcd did not answer the watch check: reconnecting and watching again from the last revision'
            : 'etcd watch lost',
      )
    }
  }

  async #resync(): Promise<void> {
    const changed = await this.load()
    if (changed.length > 0) this.#emitChange(changed, 'resync')
  }

  /** One watcher, from `revision + 1`, until it breaks; resolves with why. */
  #watchOnce(onConnected: () => void): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let watcher: Watcher
      try {
        watcher = this.#connection.client
          .watch()
          .prefix(this.#prefix)
          .startRevision(String(this.revision + 1))
          .watcher()
      } catch (error) {
        resolve({ kind: 'disconnected', error })
        return
      }
      let done = false
      let checkTimer: ReturnType<typeof setTimeout> | undefined
      const finish = (outcome: Outcome, cancel: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        clearTimeout(checkTimer)
        this.#stopCurrent = undefined
        // Unregister the etcd3 watcher, or it would reconnect on its own from its own idea of the
        // revision. Not after etcd cancelled it (etcd3 already dropped it, and a second cancel
        // would get an answer etcd3 cannot route, which it throws from a stream handler). Nobody
        // awaits it: while connected it waits for etcd. The listeners stay, because a late
        // `error` without a listener would throw.
        if (cancel) void watcher.cancel().catch(() => {})
        resolve(outcome)
      }
      // create() would never settle while etcd is down: the timeout stands in.
      const timer = setTimeout(
        () =>
          finish(
            {
              kind: 'timeout',
              error: timedOut(`etcd (watching ${this.#prefix})`, this.#opts.timeoutMs),
            },
            true,
          ),
        this.#opts.timeoutMs,
      )
      this.#stopCurrent = () => finish({ kind: 'closed' }, true)
      watcher.on('connected', (res: IWatchResponse) => {
        if (done) return
        clearTimeout(timer)
        // A store revision lower than ours means etcd lost its data (a new cluster): start over.
        if (Number(res.header.revision) < this.revision) {
          finish({ kind: 'canceled', error: new Error(`etcd's revision ${res.header.revision} is behind ours`) }, true)
          return
        }
        onConnected()
        this.#setConnected(true)
        if (Number(res.header.revision) === this.revision) this.#hook(() => this.#opts.onCurrent?.())
        const checkMs = this.#opts.checkMs ?? WATCH_CHECK_DEFAULT
        if (checkMs <= 0) return
        let suspicion: Suspicion | undefined
        const schedule = () => {
          checkTimer = setTimeout(async () => {
            const verdict = await this.#check(suspicion, checkMs)
            if (done) return
            if ('kind' in verdict) finish(verdict, true)
            else {
              suspicion = verdict.suspicion
              schedule()
            }
          }, checkMs)
          checkTimer.unref?.()
        }
        schedule()
      })
      watcher.on('data', (res: IWatchResponse) => {
        if (!done) this.#apply(res)
      })
      // etcd3 emits `disconnected` twice per reconnect: finish() acts on the first only.
      watcher.on('disconnected', (error: unknown) => finish({ kind: 'disconnected', error }, true))
      watcher.on('error', (error: unknown) => finish({ kind: 'canceled', error }, false))
      watcher.on('end', () => finish({ kind: 'disconnected', error: new Error('the watch stream ended') }, false))
    })
  }

  /**
   * One check of a live watch: reads the prefix's newest key (by mod revision) and key count, with
   * a deadline. Returns why to replace the watcher, or what to expect by the next check.
   */
  async #check(previous: Suspicion | undefined, checkMs: number): Promise<Outcome | { suspicion?: Suspicion }> {
    const { timeoutMs } = this.#opts
    let res: IRangeResponse
    try {
      res = await withTimeout(
        this.#connection.client
          .getAll()
          .prefix(this.#prefix)
          .sort('Mod', 'Descend')
          .limit(1)
          .options({ deadline: Date.now() + timeoutMs })
          .exec(),
        timeoutMs,
        () => timedOut(`etcd (checking the watch of ${this.#prefix})`, timeoutMs),
      )
    } catch (error) {
      return { kind: 'dead', error }
    }
    const etcdRevision = Number(res.header.revision)
    const newest = Number(res.kvs[0]?.mod_revision ?? 0)
    // In step: the watch got past the read, or nothing under the prefix changed after our revision
    // (a key written later would be newer; a key deleted later would leave fewer keys).
    if (this.revision >= etcdRevision || (newest <= this.revision && Number(res.count) === this.kvs.size)) {
      this.#hook(() => this.#opts.onCurrent?.())
      return {}
    }
    // Behind. Events may just be in flight, so only a watch that delivered nothing since the last
    // check, and still lacks what that check saw, counts as silent.
    if (previous && this.revision === previous.revision && this.revision < previous.needed)
      return {
        kind: 'silent',
        error: new Error(
          `etcd has changes under ${this.#prefix} up to revision ${previous.needed} that the watch, at ${this.revision}, has not delivered in ${checkMs} ms`,
        ),
      }
    return { suspicion: { revision: this.revision, needed: Math.max(newest, this.revision + 1) } }
  }

  #apply(res: IWatchResponse): void {
    const before = this.revision
    const changed = new Set<string>()
    let revision = before
    for (const event of res.events) {
      const rev = Number(event.kv.mod_revision)
      if (rev <= before) continue // already in the copy
      const key = event.kv.key.toString()
      if (event.type === 'Put') this.kvs.set(key, event.kv.value.toString())
      else this.kvs.delete(key)
      changed.add(key)
      if (rev > revision) revision = rev
    }
    // A response without events is a progress notification: everything up to its revision was
    // sent. With events, the header may be ahead of events still to come (etcd sends catch-up in
    // batches with the current revision), so only the events' own revisions count.
    if (res.events.length === 0 && !res.created) revision = Math.max(revision, Number(res.header.revision))
    this.revision = revision
    if (revision >= Number(res.header.revision)) this.#hook(() => this.#opts.onCurrent?.())
    if (changed.size > 0) this.#emitChange([...changed], 'watch')
  }

  // Metric hooks run from timers and etcd3's stream handlers: nothing may escape them.
  #hook(call: () => void): void {
    try {
      call()
    } catch {
      // A hook that throws changes nothing here.
    }
  }

  // Called from etcd3's stream handlers, which rethrow asynchronously (crashing the process).
  #emitChange(keys: string[], reason: 'watch' | 'resync'): void {
    try {
      this.#opts.onChange(keys, this.revision, reason)
    } catch (error) {
      safeLog(this.#opts.logger, 'error', { prefix: this.#prefix, err: messageOf(error) }, 'etcd change handler threw')
    }
  }

  #setConnected(connected: boolean, error?: unknown): void {
    if (this.#connected === connected) return
    this.#connected = connected
    try {
      this.#opts.onStatus?.(connected, error)
    } catch (err) {
      safeLog(this.#opts.logger, 'error', { err: messageOf(err) }, 'etcd status handler threw')
    }
  }
}
