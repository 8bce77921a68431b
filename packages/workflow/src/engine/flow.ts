/**
 * The flow gate: an activity attempt passes it before it runs. Attempts of a paused activity type,
 * or of one whose breaker is open, wait here without spending anything; attempts over a limit wait
 * in the store's queue (in the order they became due, across every engine) until it admits them.
 * Activities without limits, breaker or pause pass straight through.
 */
import { parseDuration } from '@backplane/internal'
import { NonRetryableError } from '../activity-errors.js'
import { WorkflowError } from '../errors.js'
import {
  type ActivityControl,
  breakerState,
  type ControlChange,
  type ControlResult,
  type FlowRequest,
  type FlowStore,
  flowMethods,
} from '../flow-store.js'
import type { ActivityState } from '../types.js'
import type { ActivityEntry, EngineContext } from './context.js'

/** What an admitted attempt hands back when it ends. */
export interface Ticket {
  readonly activity: string
  readonly holder: string
  /** Holds a slot in the store's queue (released on leave). */
  readonly admitted: boolean
}

/** How an attempt ended, as the breaker counts it. */
export type AttemptOutcome = 'success' | 'failure' | 'answered' | 'none'

export interface FlowGate {
  /**
   * Resolves when the attempt may run, or with undefined when it must not (the engine is closing,
   * or the same attempt already waits). Throws a NonRetryableError when the key function fails.
   */
  enter(attempt: {
    activity: string
    holder: string
    instanceId: string
    since: number
    input: unknown
  }): Promise<Ticket | undefined>
  /** Gives the slot back and tells the breaker how the attempt went. */
  leave(ticket: Ticket, outcome: AttemptOutcome): Promise<void>
  /** Each poll: reads the control rows, keeps this engine's queue rows alive, lets waiting attempts through. */
  refresh(): Promise<void>
  pause(activity: string): Promise<ActivityState>
  resume(activity: string): Promise<ActivityState>
  list(): Promise<ActivityState[]>
  /** Lets every waiting attempt go (they run again after a restart) and gives their queue rows up. */
  close(): Promise<void>
  readonly waiting: number
}

interface Waiter {
  readonly request: FlowRequest
  readonly instanceId: string
  readonly resolve: (ticket: Ticket | undefined) => void
}

/** One activity type's waiting attempts and the slots this engine holds. */
interface Lane {
  readonly activity: string
  readonly entry: ActivityEntry | undefined
  readonly waiting: Map<string, Waiter>
  readonly running: Set<string>
  pumping: boolean
  again: boolean
  timer: unknown
  timerAt: number
}

/** The most requests one admit call carries; the rest ask on the next pump. */
const ADMIT_BATCH = 500
const MAX_KEY_LENGTH = 1000

const queueOrder = (a: Waiter, b: Waiter): number =>
  a.request.since - b.request.since || (a.request.holder < b.request.holder ? -1 : 1)

export function createFlowGate(ctx: EngineContext): FlowGate {
  const { store, clock, logger, events, owner, owned, activities, opts } = ctx
  const methods = flowMethods(store as Partial<FlowStore>)
  const controls = new Map<string, ActivityControl>()
  const lanes = new Map<string, Lane>()
  let closed = false
  // A read of every control row must not undo a change this engine wrote while the read was in flight.
  let writes = 0
  const writtenAt = new Map<string, number>()
  const readControls = async (flow: FlowStore): Promise<void> => {
    const before = writes
    for (const control of await flow.listActivityControls())
      if ((writtenAt.get(control.activity) ?? 0) <= before) controls.set(control.activity, control)
  }

  const needed = [...activities].filter(([, entry]) => entry.limits || entry.breaker).map(([name]) => name)
  if (needed.length > 0 && !methods)
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `activities ${needed.join(', ')} have limits or a breaker, but the ${store.kind} store does not keep flow control: expected a store with admitActivity, releaseActivity, controlActivity and listActivityControls (memory, SQLite and PostgreSQL have them)`,
    )

  const need = (what: string): FlowStore => {
    ctx.assertOpen()
    if (!methods)
      throw new WorkflowError(
        'WORKFLOW_INVALID_OPTIONS',
        `${what}: the ${store.kind} store does not keep flow control (memory, SQLite and PostgreSQL do)`,
      )
    return methods
  }

  const laneOf = (activity: string): Lane => {
    let lane = lanes.get(activity)
    if (!lane) {
      lane = {
        activity,
        entry: activities.get(activity),
        waiting: new Map(),
        running: new Set(),
        pumping: false,
        again: false,
        timer: undefined,
        timerAt: Number.POSITIVE_INFINITY,
      }
      lanes.set(activity, lane)
    }
    return lane
  }

  /** Whether attempts of this activity must wait here now, before any limit. */
  const gated = (lane: Lane): boolean => {
    const control = controls.get(lane.activity)
    return !!lane.entry?.limits || !!control?.paused || breakerState(control, clock.now()) !== 'closed'
  }

  const wakeAt = (lane: Lane, at: number) => {
    if (closed || at >= lane.timerAt) return
    if (lane.timer !== undefined) clock.clearTimeout(lane.timer)
    lane.timerAt = at
    lane.timer = clock.setTimeout(
      () => {
        lane.timer = undefined
        lane.timerAt = Number.POSITIVE_INFINITY
        pump(lane)
      },
      Math.max(0, at - clock.now()),
    )
  }

  // One control change at a time per activity: each compares with what the one before it left, so
  // two outcomes landing together (a probe's and the next attempt's) report a transition once.
  const changing = new Map<string, Promise<unknown>>()

  /** Writes a control change (the store decides it atomically) and reports a breaker that opened or closed. */
  const changeControl = (flow: FlowStore, activity: string, change: ControlChange): Promise<ControlResult> => {
    const run = (changing.get(activity) ?? Promise.resolve()).then(
      () => applyControl(flow, activity, change),
      () => applyControl(flow, activity, change),
    )
    changing.set(activity, run)
    return run
  }

  const applyControl = async (flow: FlowStore, activity: string, change: ControlChange): Promise<ControlResult> => {
    const before = controls.get(activity)
    const now = clock.now()
    const result = await flow.controlActivity(activity, change, now)
    const { control } = result
    writtenAt.set(activity, ++writes)
    controls.set(activity, control)
    const was = breakerState(before, now)
    const is = breakerState(control, now)
    if (was === 'closed' && is !== 'closed') {
      logger.warn(
        { activity, failures: control.failures, until: control.openUntil },
        'workflow activity breaker open: attempts wait',
      )
      events.emit('breaker', {
        activity,
        state: 'open',
        failures: control.failures,
        openUntil: control.openUntil === null ? null : new Date(control.openUntil),
      })
    } else if (was !== 'closed' && is === 'closed') {
      logger.info({ activity }, 'workflow activity breaker closed')
      events.emit('breaker', { activity, state: 'closed', failures: 0, openUntil: null })
    }
    return result
  }

  const admit = (lane: Lane, waiter: Waiter, admitted: boolean) => {
    lane.waiting.delete(waiter.request.holder)
    if (admitted) lane.running.add(waiter.request.holder)
    waiter.resolve({ activity: lane.activity, holder: waiter.request.holder, admitted })
  }

  /** Lets through what may run now; one pass at a time per activity. */
  const pump = (lane: Lane): void => {
    if (closed) return
    if (lane.pumping) {
      lane.again = true
      return
    }
    lane.pumping = true
    ctx
      .track(pass(lane))
      .catch((error) => {
        ctx.reportError(error, `workflow: flow control of ${lane.activity} failed; trying again`)
        wakeAt(lane, clock.now() + 1000)
      })
      .finally(() => {
        lane.pumping = false
        if (lane.again) {
          lane.again = false
          pump(lane)
        }
      })
  }

  const pass = async (lane: Lane): Promise<void> => {
    // Controls and limits exist only over a store with the flow methods (checked at creation).
    const flow = methods as FlowStore
    if (ctx.closing) return
    const now = clock.now()
    const control = controls.get(lane.activity)
    const limits = lane.entry?.limits
    if (lane.waiting.size === 0 && (!limits || lane.running.size === 0)) return
    let candidates = [...lane.waiting.values()].sort(queueOrder)
    if (control?.paused) candidates = []
    else {
      const state = breakerState(control, now)
      if (state === 'open') {
        wakeAt(lane, control?.openUntil ?? now)
        candidates = []
      } else if (state === 'half-open' && candidates.length > 0) {
        const probe = candidates[0] as Waiter
        const timeout = parseDuration(lane.entry?.timeout ?? opts.activityTimeout) ?? opts.activityTimeout
        const { applied } = await changeControl(flow, lane.activity, {
          kind: 'probe',
          holder: probe.request.holder,
          until: now + timeout + opts.leaseTimeout,
        })
        // Another engine probes: its outcome reaches this one through refresh.
        candidates = applied ? [probe] : []
      }
    }
    if (!limits) {
      for (const waiter of candidates) admit(lane, waiter, false)
      return
    }
    const batch = candidates.slice(0, ADMIT_BATCH)
    const result = await flow.admitActivity({
      activity: lane.activity,
      owner,
      now,
      limits,
      staleBefore: now - opts.leaseTimeout,
      requests: batch.map((w) => w.request),
      running: [...lane.running],
    })
    const granted = new Set(result.granted)
    for (const waiter of batch) if (granted.has(waiter.request.holder)) admit(lane, waiter, true)
    if (result.retryAt !== null) wakeAt(lane, result.retryAt)
    if (candidates.length > ADMIT_BATCH && granted.size > 0) lane.again = true
  }

  const release = async (lane: Lane, holders: string[]): Promise<void> => {
    if (holders.length === 0 || !methods) return
    for (const holder of holders) lane.running.delete(holder)
    try {
      await methods.releaseActivity(lane.activity, holders)
    } catch (error) {
      // The rows go stale after leaseTimeout and free their slots then.
      ctx.reportError(error, `workflow: could not give back ${holders.length} slot(s) of ${lane.activity}`)
    }
  }

  const stateOf = (activity: string, control: ActivityControl | undefined): ActivityState => ({
    activity,
    paused: control?.paused ?? false,
    breaker: breakerState(control, clock.now()),
    failures: control?.failures ?? 0,
    openUntil: control?.openUntil == null ? null : new Date(control.openUntil),
    waiting: lanes.get(activity)?.waiting.size ?? 0,
  })

  const checkName = (activity: unknown, what: string): string => {
    if (typeof activity !== 'string' || activity.length === 0 || activity.length > 200)
      throw new WorkflowError(
        'WORKFLOW_INVALID_OPTIONS',
        `${what}: expected an activity name (a non-empty string of at most 200 characters), got ${JSON.stringify(activity)}`,
      )
    return activity
  }

  return {
    enter({ activity, holder, instanceId, since, input }) {
      const lane = laneOf(activity)
      if (lane.waiting.has(holder) || closed) return Promise.resolve(undefined)
      if (!gated(lane)) return Promise.resolve({ activity, holder, admitted: false })
      let key: string | null = null
      if (lane.entry?.key) {
        try {
          key = lane.entry.key(input) as string
        } catch (error) {
          throw new NonRetryableError(`limits.key of ${activity} threw: ${(error as Error)?.message ?? error}`, {
            cause: error,
          })
        }
        if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH || key.includes('\u0000'))
          throw new NonRetryableError(
            `limits.key of ${activity} must return a string of at most ${MAX_KEY_LENGTH} characters without NUL, got ${JSON.stringify(key)?.slice(0, 100)}`,
          )
      }
      return new Promise((resolve) => {
        lane.waiting.set(holder, { request: { holder, key, since }, instanceId, resolve })
        pump(lane)
      })
    },

    async leave(ticket, outcome) {
      const lane = laneOf(ticket.activity)
      if (ticket.admitted) await release(lane, [ticket.holder])
      const breaker = lane.entry?.breaker
      if (breaker && methods && outcome !== 'none') {
        const control = controls.get(ticket.activity)
        try {
          if (outcome === 'failure')
            await changeControl(methods, ticket.activity, {
              kind: 'failure',
              holder: ticket.holder,
              threshold: breaker.failures,
              cooldown: breaker.cooldown,
            })
          // A success (or an answer the caller is told not to retry) closes the breaker; written only
          // when there is something to reset, so a healthy activity costs no write.
          else if (control && (control.failures > 0 || control.openUntil !== null))
            await changeControl(methods, ticket.activity, { kind: 'success', holder: ticket.holder })
        } catch (error) {
          ctx.reportError(error, `workflow: could not record the outcome of ${ticket.activity} for its breaker`)
        }
      }
      if (lane.waiting.size > 0) pump(lane)
    },

    async refresh() {
      if (!methods || closed) return
      // Every poll, even with no limits or breaker here: a pause set elsewhere (another engine, the
      // CLI) reaches `enter` only through this read.
      await readControls(methods)
      for (const lane of lanes.values()) {
        // Attempts whose instance this engine no longer drives give their place up.
        const gone = [...lane.waiting.values()].filter((w) => !owned.has(w.instanceId))
        for (const waiter of gone) {
          lane.waiting.delete(waiter.request.holder)
          waiter.resolve(undefined)
        }
        if (lane.entry?.limits)
          await release(
            lane,
            gone.map((w) => w.request.holder),
          )
        if (lane.waiting.size > 0 || (lane.entry?.limits && lane.running.size > 0)) pump(lane)
      }
    },

    async pause(activity) {
      checkName(activity, 'pauseActivity')
      const { control } = await changeControl(need('pauseActivity'), activity, { kind: 'pause' })
      logger.warn({ activity }, 'workflow activity paused: its attempts wait')
      return stateOf(activity, control)
    },

    async resume(activity) {
      checkName(activity, 'resumeActivity')
      const { control } = await changeControl(need('resumeActivity'), activity, { kind: 'resume' })
      logger.info({ activity }, 'workflow activity resumed')
      const lane = lanes.get(activity)
      if (lane) pump(lane)
      return stateOf(activity, control)
    },

    async list() {
      await readControls(need('activities'))
      const names = new Set([...activities.keys(), ...controls.keys()])
      return [...names].sort().map((name) => stateOf(name, controls.get(name)))
    },

    async close() {
      closed = true
      for (const lane of lanes.values()) {
        if (lane.timer !== undefined) clock.clearTimeout(lane.timer)
        const waiting = [...lane.waiting.values()]
        lane.waiting.clear()
        for (const waiter of waiting) waiter.resolve(undefined)
        // Running attempts give their slots back as they end (leave).
        if (lane.entry?.limits)
          await release(
            lane,
            waiting.map((w) => w.request.holder),
          )
      }
    },

    get waiting() {
      let total = 0
      for (const lane of lanes.values()) total += lane.waiting.size
      return total
    },
  }
}
