/**
 * Flow control as the store keeps it: the queue of attempts waiting for or holding a slot of an
 * activity type (per type and per key), the log of recent starts that rate limits count, and one
 * control row per activity type (paused by hand, circuit breaker). The decisions are pure functions
 * here; each store runs them under its own lock, so every store decides alike.
 */

/** A rate limit: at most `limit` attempts start in any window of `per` ms. */
export interface FlowRate {
  readonly limit: number
  readonly per: number
}

/** The limits of one activity type, as resolved by the engine (every engine on a store should give the same). */
export interface FlowLimits {
  /** Attempts running at once, across every engine on the store. */
  readonly concurrency?: number | undefined
  readonly rate?: FlowRate | undefined
  /** The same, for each key (attempts with a null key are not limited per key). */
  readonly keyConcurrency?: number | undefined
  readonly keyRate?: FlowRate | undefined
}

/** One attempt asking for a slot. */
export interface FlowRequest {
  /** Instance id and task id: stable across restarts of the same attempt. */
  readonly holder: string
  readonly key: string | null
  /** Its place in the queue: earlier first (ties by holder). When the attempt became due. */
  readonly since: number
}

export interface AdmitOptions {
  readonly activity: string
  readonly owner: string
  readonly now: number
  readonly limits: FlowLimits
  /** Waiting or running rows not refreshed since this time belong to a process that stopped: dropped. */
  readonly staleBefore: number
  /**
   * This owner's attempts asking to run: registered as waiting (keeping their place) when not
   * admitted. A request for a holder whose row is running changes nothing: only `running` keeps that
   * row alive, so a slot left by a process that died (or a restart with the same owner) lapses after
   * `staleBefore` passes it, and the request then joins the queue at its old place.
   */
  readonly requests: readonly FlowRequest[]
  /** Holders this owner still runs: their rows are refreshed. */
  readonly running: readonly string[]
}

export interface AdmitResult {
  /** The requests admitted now, marked running and counted as started. */
  readonly granted: readonly string[]
  /** When a rate window next lets a denied request through; null when they wait for a slot to free. */
  readonly retryAt: number | null
}

/** A row of the queue: an attempt waiting for a slot, or holding one. */
export interface FlowSlot {
  readonly holder: string
  readonly key: string | null
  readonly since: number
  readonly owner: string
  readonly running: boolean
  /** Last refreshed by its owner. */
  readonly seenAt: number
}

/** A start, kept while a rate window can still count it. */
export interface FlowStart {
  readonly key: string | null
  readonly at: number
}

/** The breaker and pause state of one activity type. */
export interface ActivityControl {
  readonly activity: string
  /** Paused by hand: no attempt starts (running ones finish). */
  readonly paused: boolean
  /** Failed attempts in a row (a success resets it). */
  readonly failures: number
  /** Set while the breaker is open: attempts wait until then, then one probe runs (half-open). */
  readonly openUntil: number | null
  /** The probe attempt running now, and until when its claim holds. */
  readonly probe: string | null
  readonly probeUntil: number
  readonly updatedAt: number
}

export type ControlChange =
  | { readonly kind: 'pause' }
  /** Unpauses and closes the breaker. */
  | { readonly kind: 'resume' }
  /** Claims the half-open probe: applied when the breaker is open, due, and no live probe runs. */
  | { readonly kind: 'probe'; readonly holder: string; readonly until: number }
  /** An attempt succeeded: the breaker closes and the count resets. */
  | { readonly kind: 'success'; readonly holder: string }
  /** An attempt failed: `threshold` failures in a row, or a failed probe, open the breaker for `cooldown` ms. */
  | { readonly kind: 'failure'; readonly holder: string; readonly threshold: number; readonly cooldown: number }

export interface ControlResult {
  readonly control: ActivityControl
  /** False only for a `probe` that another attempt holds or that is not due. */
  readonly applied: boolean
}

/**
 * The optional flow-control methods of a Store, as a group. Without them engines refuse activities
 * with limits or a breaker, and pausing by hand.
 */
export interface FlowStore {
  /**
   * Atomically for the activity: drops stale rows, refreshes `running`, registers `requests`, and
   * admits requests in queue order (`planAdmission`); admitted ones become running and their start
   * is logged.
   */
  admitActivity(options: AdmitOptions): Promise<AdmitResult>
  /** Gives up the rows of these holders (attempt ended, or no longer wanted). */
  releaseActivity(activity: string, holders: readonly string[]): Promise<void>
  /** Reads, changes (`applyControl`) and writes an activity's control row atomically. */
  controlActivity(activity: string, change: ControlChange, now: number): Promise<ControlResult>
  /** Every control row, ordered by activity. */
  listActivityControls(): Promise<ActivityControl[]>
}

/** The store's methods, or undefined when it lacks any of them. */
export function flowMethods(store: Partial<FlowStore>): FlowStore | undefined {
  const { admitActivity, releaseActivity, controlActivity, listActivityControls } = store
  if (!admitActivity || !releaseActivity || !controlActivity || !listActivityControls) return undefined
  return store as FlowStore
}

/** The longest window any rate of these limits counts: starts older than this are not needed. */
export function rateWindow(limits: FlowLimits): number {
  return Math.max(limits.rate?.per ?? 0, limits.keyRate?.per ?? 0)
}

const byQueueOrder = (a: FlowSlot, b: FlowSlot): number =>
  a.since - b.since || (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0)

/** Counts starts inside a window, and says when the window next has room. */
class Window {
  private readonly times: number[]
  constructor(
    private readonly rate: FlowRate,
    starts: readonly number[],
    now: number,
  ) {
    this.times = starts.filter((at) => at > now - rate.per).sort((a, b) => a - b)
  }
  get full(): boolean {
    return this.times.length >= this.rate.limit
  }
  add(at: number): void {
    this.times.push(at)
  }
  /** When a start next leaves the window enough to let one more in. */
  get opensAt(): number {
    return (this.times[this.times.length - this.rate.limit] as number) + this.rate.per
  }
}

/**
 * Which of `asking` the queue admits now. `slots` are the live rows (stale ones dropped, requests
 * registered), `starts` the logged starts. Waiting rows are taken in queue order: one whose key is
 * full is passed over (other keys go on), and once the activity as a whole is full nobody further
 * is admitted. Rows of other owners that would fit keep their capacity: the queue stays in order
 * across processes, each process taking its own when it next asks.
 */
export function planAdmission(
  slots: readonly FlowSlot[],
  starts: readonly FlowStart[],
  limits: FlowLimits,
  now: number,
  asking: ReadonlySet<string>,
): AdmitResult {
  let running = 0
  const runningByKey = new Map<string | null, number>()
  for (const slot of slots)
    if (slot.running) {
      running++
      runningByKey.set(slot.key, (runningByKey.get(slot.key) ?? 0) + 1)
    }
  const activityWindow = limits.rate
    ? new Window(
        limits.rate,
        starts.map((s) => s.at),
        now,
      )
    : undefined
  const keyWindows = new Map<string, Window>()
  const keyWindow = (key: string): Window | undefined => {
    if (!limits.keyRate) return undefined
    let window = keyWindows.get(key)
    if (!window) {
      window = new Window(
        limits.keyRate,
        starts.filter((s) => s.key === key).map((s) => s.at),
        now,
      )
      keyWindows.set(key, window)
    }
    return window
  }

  const granted: string[] = []
  let retryAt: number | null = null
  const later = (at: number) => {
    retryAt = retryAt === null ? at : Math.min(retryAt, at)
  }
  const keyBusy = (key: string | null): boolean =>
    key !== null && limits.keyConcurrency !== undefined && (runningByKey.get(key) ?? 0) >= limits.keyConcurrency
  const waiting = slots.filter((s) => !s.running).sort(byQueueOrder)
  for (const [index, slot] of waiting.entries()) {
    if (limits.concurrency !== undefined && running >= limits.concurrency) break
    if (activityWindow?.full) {
      // Worth a wake-up only for an asker that the window alone holds back (a busy key waits for a release).
      if (waiting.slice(index).some((s) => asking.has(s.holder) && !keyBusy(s.key))) later(activityWindow.opensAt)
      break
    }
    if (slot.key !== null) {
      const keyRunning = runningByKey.get(slot.key) ?? 0
      if (keyBusy(slot.key)) continue
      const window = keyWindow(slot.key)
      if (window?.full) {
        if (asking.has(slot.holder)) later(window.opensAt)
        continue
      }
      runningByKey.set(slot.key, keyRunning + 1)
      window?.add(now)
    }
    running++
    activityWindow?.add(now)
    if (asking.has(slot.holder)) granted.push(slot.holder)
  }
  return { granted, retryAt }
}

/** An activity's control row before anything was written for it. */
export function initialControl(activity: string, now: number): ActivityControl {
  return { activity, paused: false, failures: 0, openUntil: null, probe: null, probeUntil: 0, updatedAt: now }
}

/** The control row after `change`, and whether it applied (see `ControlChange`). */
export function applyControl(
  current: ActivityControl | undefined,
  activity: string,
  change: ControlChange,
  now: number,
): ControlResult {
  const control = current ?? initialControl(activity, now)
  const next = (patch: Partial<ActivityControl>): ControlResult => ({
    control: { ...control, ...patch, updatedAt: now },
    applied: true,
  })
  switch (change.kind) {
    case 'pause':
      return next({ paused: true })
    case 'resume':
      return next({ paused: false, failures: 0, openUntil: null, probe: null, probeUntil: 0 })
    case 'probe': {
      const due = !control.paused && control.openUntil !== null && control.openUntil <= now
      const free = control.probe === null || control.probeUntil <= now || control.probe === change.holder
      if (!due || !free) return { control, applied: false }
      return next({ probe: change.holder, probeUntil: change.until })
    }
    case 'success':
      return next({ failures: 0, openUntil: null, probe: null, probeUntil: 0 })
    case 'failure': {
      const failures = control.failures + 1
      const wasProbe = control.probe === change.holder
      if (wasProbe || (control.openUntil === null && failures >= change.threshold))
        return next({ failures, openUntil: now + change.cooldown, probe: null, probeUntil: 0 })
      return next({ failures })
    }
  }
}

/** Where an activity's breaker stands at `now`. */
export function breakerState(control: ActivityControl | undefined, now: number): 'closed' | 'open' | 'half-open' {
  if (!control || control.openUntil === null) return 'closed'
  if (control.openUntil > now) return 'open'
  return 'half-open'
}
