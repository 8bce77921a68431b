/**
 * Schedules, the engine side: `schedule`/`unschedule`/`schedules`/`pauseSchedule`/`resumeSchedule`,
 * and the loop that starts due ticks. A worker claims due schedules from the store (a lease, as for
 * instances), starts each due tick's instance under an id derived from the tick, then writes the
 * schedule forward with a compare-and-set. A crash in between leaves the schedule due: whoever claims
 * it next starts the same ids again, which the store refuses as existing, so a tick is never doubled
 * and never lost. Due times are read on the engine's clock: a test clock drives ticks.
 */
import { WorkflowError } from '../errors.js'
import type { AnyMachine } from '../machine.js'
import {
  checkScheduleId,
  dueTicks,
  parseScheduleOptions,
  publicSchedule,
  type Schedule,
  type ScheduleOptions,
  sameTicks,
  tickAfter,
  tickAtOrAfter,
  tickInstanceId,
} from '../schedule-spec.js'
import { type ScheduleDefinition, type ScheduleRecord, type ScheduleStore, scheduleMethods } from '../schedule-store.js'
import { initialStep } from '../transition.js'
import type { Commits } from './commits.js'
import { type EngineContext, MAX_TIMEOUT } from './context.js'

const CLAIM_PAGE = 100

export interface ScheduleApi {
  schedule<I = unknown>(id: string, options: ScheduleOptions<I>): Promise<Schedule>
  unschedule(id: string): Promise<boolean>
  schedules(): Promise<Schedule[]>
  pauseSchedule(id: string): Promise<Schedule>
  resumeSchedule(id: string): Promise<Schedule>
}

export interface Schedules {
  readonly api: ScheduleApi
  /** Starts the poll loop and the first pass (workers only). */
  start(): void
  stop(): void
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export function createSchedules(ctx: EngineContext, commits: Commits): Schedules {
  const { store, clock, owner, opts, machines, latest, events, worker } = ctx
  const methods = scheduleMethods(store)
  /** Input functions given to `schedule` in this process, by schedule id. */
  const inputFns = new Map<string, (tick: Date) => unknown>()
  /** The instances queued ticks wait for: their end wakes the loop. */
  const awaited = new Set<string>()
  /** Schedules whose missing input function was logged already. */
  const warned = new Set<string>()
  // A tick found due later than this after its time was missed (the engines were down): catchUp applies.
  const grace = opts.leaseTimeout + opts.pollInterval
  let timer: unknown
  let poll: ReturnType<typeof setTimeout> | undefined
  let pass: Promise<void> | undefined
  let again = false
  let stopped = false

  const need = (what: string): ScheduleStore => {
    ctx.assertOpen()
    if (!methods)
      throw new WorkflowError(
        'WORKFLOW_INVALID_OPTIONS',
        `${what}: the ${store.kind} store does not keep schedules: expected a store with putSchedule, getSchedule, listSchedules, deleteSchedule and claimDueSchedules (memory, SQLite and PostgreSQL have them)`,
      )
    return methods
  }

  const firstTick = (d: ScheduleDefinition, now: number): number | null =>
    d.startAt !== undefined && d.startAt >= now ? tickAtOrAfter(d, d.startAt) : tickAfter(d, now)

  /** Read, change, compare-and-set; again when another write came first. */
  const update = async (
    ss: ScheduleStore,
    id: string,
    change: (current: ScheduleRecord | undefined, now: number) => Omit<ScheduleRecord, 'revision' | 'updatedAt'>,
  ): Promise<ScheduleRecord> => {
    for (;;) {
      const current = await ss.getSchedule(id)
      const now = clock.now()
      const next = { ...change(current, now), revision: (current?.revision ?? 0) + 1, updatedAt: now }
      if (await ss.putSchedule(next, current?.revision ?? 0)) {
        kick()
        return next
      }
    }
  }

  const setPaused = async (id: string, paused: boolean, what: string): Promise<Schedule> => {
    const ss = need(what)
    checkScheduleId(id, what)
    return publicSchedule(
      await update(ss, id, (current, now) => {
        if (!current) throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', `${what}: no schedule ${JSON.stringify(id)}`)
        const definition = { ...current.definition, paused }
        // Ticks that passed while paused are not started: resume from the next one.
        const nextTick =
          !paused && current.nextTick !== null && current.nextTick < now
            ? tickAtOrAfter(definition, now)
            : current.nextTick
        return { ...current, definition, nextTick }
      }),
    )
  }

  const api: ScheduleApi = {
    async schedule(id, options) {
      const ss = need('schedule')
      checkScheduleId(id, 'schedule')
      // Checked once up front so a mistake throws before any store round trip.
      const { inputFn } = parseScheduleOptions(id, options, clock.now())
      const record = await update(ss, id, (current, now) => {
        const { definition } = parseScheduleOptions(id, options, current?.definition.anchor ?? now)
        if (!machines.has(definition.machine))
          throw new WorkflowError(
            'WORKFLOW_UNKNOWN_MACHINE',
            `schedule(${id}): no machine ${JSON.stringify(definition.machine)} is registered (registered: ${[...machines.keys()].join(', ') || 'none'})`,
          )
        if (definition.version !== undefined && !machines.get(definition.machine)?.has(definition.version))
          throw new WorkflowError(
            'WORKFLOW_UNKNOWN_VERSION',
            `schedule(${id}): machine ${definition.machine} has no registered version ${definition.version}`,
          )
        const keep = current !== undefined && sameTicks(current.definition, definition)
        // Every process calls schedule() at start: that must not resume a schedule paused by hand.
        const paused = options.paused === undefined && current ? current.definition.paused : definition.paused
        return {
          id,
          definition: { ...definition, paused },
          nextTick: keep ? current.nextTick : firstTick(definition, now),
          queuedTick: current?.queuedTick ?? null,
          lastTick: current?.lastTick ?? null,
          lastInstance: current?.lastInstance ?? null,
          skipped: current?.skipped ?? 0,
          createdAt: current?.createdAt ?? now,
        }
      })
      if (inputFn) inputFns.set(id, inputFn)
      else inputFns.delete(id)
      return publicSchedule(record)
    },
    async unschedule(id) {
      const ss = need('unschedule')
      checkScheduleId(id, 'unschedule')
      inputFns.delete(id)
      return ss.deleteSchedule(id)
    },
    async schedules() {
      return (await need('schedules').listSchedules()).map(publicSchedule)
    },
    pauseSchedule: (id) => setPaused(id, true, 'pauseSchedule'),
    resumeSchedule: (id) => setPaused(id, false, 'resumeSchedule'),
  }

  const machineOf = (d: ScheduleDefinition, id: string): AnyMachine => {
    const machine = d.version === undefined ? latest.get(d.machine) : machines.get(d.machine)?.get(d.version)
    if (!machine)
      throw new WorkflowError(
        machines.has(d.machine) ? 'WORKFLOW_UNKNOWN_VERSION' : 'WORKFLOW_UNKNOWN_MACHINE',
        `schedule ${id}: machine ${d.machine}${d.version === undefined ? '' : ` v${d.version}`} is not registered in this engine`,
      )
    return machine
  }

  /**
   * Starts one tick's instance: true when it was started now or before (its id exists), false when
   * it cannot start (its input or entry actions fail: a permanent error, reported). Throws what a
   * later try may get past (store down, machine or input function not registered here).
   */
  const startTick = async (record: ScheduleRecord, tick: number): Promise<boolean> => {
    const d = record.definition
    const id = tickInstanceId(record.id, tick)
    const machine = machineOf(d, record.id)
    // A function this process registered earlier is stale once the definition says the input is data.
    const fn = d.inputFunction ? inputFns.get(record.id) : undefined
    if (d.inputFunction && !fn)
      throw new WorkflowError(
        'WORKFLOW_INVALID_OPTIONS',
        `schedule ${record.id}: its input is a function this process does not have: call engine.schedule(${JSON.stringify(record.id)}, …) here too`,
      )
    let input: unknown
    try {
      input = fn ? fn(new Date(tick)) : d.input
    } catch (error) {
      ctx.reportError(error, `workflow: schedule ${record.id}: input(${new Date(tick).toISOString()}) threw`)
      return false
    }
    const step = initialStep(machine, id, input, clock.now())
    if (step.type !== 'step') {
      ctx.reportError(
        step.type === 'error' ? step.error : new Error(`cannot start ${id}`),
        `workflow: schedule ${record.id}: tick ${id} not started`,
      )
      return false
    }
    // Which schedule and tick started it goes in the start row's event; the context stays the app's.
    const stamped = {
      ...step,
      history: {
        ...step.history,
        event: { ...(step.history.event as object), schedule: { id: record.id, tick: new Date(tick).toISOString() } },
      },
    }
    try {
      await commits.mutate(id, (existing) =>
        existing ? { result: undefined } : { commit: stamped, done: () => undefined },
      )
    } catch (error) {
      if (!WorkflowError.is(error, 'WORKFLOW_DUPLICATE_INSTANCE')) throw error
    }
    return true
  }

  const isRunning = async (instanceId: string | null): Promise<boolean> =>
    instanceId !== null && (await store.load(instanceId))?.status === 'running'

  /** Handles what is due of one claimed schedule, then writes it forward (or leaves it, claimed, to a retry). */
  const runOne = async (ss: ScheduleStore, record: ScheduleRecord) => {
    const d = record.definition
    const now = clock.now()
    if (d.inputFunction && !inputFns.has(record.id)) {
      // Not registered here (yet: a process starting drives before the app calls schedule): hand the
      // claim back by writing the schedule unchanged, so a process that has the function runs it now.
      if (!warned.has(record.id)) {
        warned.add(record.id)
        ctx.logger.warn(
          { schedule: record.id },
          'workflow: schedule input is a function this process has not registered (engine.schedule): leaving its ticks to the processes that have',
        )
      }
      await ss.putSchedule({ ...record, revision: record.revision + 1, updatedAt: record.updatedAt }, record.revision)
      return
    }
    const s: Mutable<ScheduleRecord> = { ...record }
    const started = async (tick: number) => {
      if (await startTick(record, tick)) {
        s.lastTick = Math.max(s.lastTick ?? tick, tick)
        s.lastInstance = tickInstanceId(record.id, tick)
      } else s.skipped++
    }
    if (s.queuedTick !== null && !(await isRunning(s.lastInstance))) {
      await started(s.queuedTick)
      s.queuedTick = null
    }
    if (!d.paused && s.nextTick !== null && s.nextTick <= now) {
      const { ticks, next } = dueTicks(d, s.nextTick, now, grace)
      for (const tick of ticks) {
        // A tick whose instance exists was started by a process that died before writing the schedule.
        const blocked =
          d.overlap !== 'allow' &&
          !(await store.load(tickInstanceId(record.id, tick))) &&
          (await isRunning(s.lastInstance))
        if (!blocked) await started(tick)
        else if (d.overlap === 'queue' && s.queuedTick === null) s.queuedTick = tick
        else s.skipped++
      }
      s.nextTick = next
    }
    if (s.queuedTick !== null && s.lastInstance) awaited.add(s.lastInstance)
    // False: the schedule was replaced or paused meanwhile; the next claim sees that version.
    await ss.putSchedule({ ...s, revision: record.revision + 1, updatedAt: now }, record.revision)
  }

  const armTimer = async (ss: ScheduleStore) => {
    const now = clock.now()
    let at = Number.POSITIVE_INFINITY
    for (const record of await ss.listSchedules()) {
      if (record.definition.paused) continue
      if (record.queuedTick !== null && record.lastInstance) awaited.add(record.lastInstance)
      // Due but held by another engine: the poll loop comes back for it.
      if (record.nextTick !== null && record.nextTick > now) at = Math.min(at, record.nextTick)
    }
    if (timer !== undefined) clock.clearTimeout(timer)
    timer = undefined
    if (at === Number.POSITIVE_INFINITY || stopped) return
    timer = clock.setTimeout(
      () => {
        timer = undefined
        kick()
      },
      Math.min(MAX_TIMEOUT, at - now),
    )
  }

  const runPass = async (ss: ScheduleStore) => {
    // A schedule still due after its turn (queued behind a running instance, an input function
    // this process lacks, a failing start) is claimed again at once: one turn each per pass.
    const seen = new Set<string>()
    for (;;) {
      const now = clock.now()
      const claimed = await ss.claimDueSchedules({ owner, now, leaseUntil: now + opts.leaseTimeout, limit: CLAIM_PAGE })
      const fresh = claimed.filter((record) => !seen.has(record.id))
      for (const record of fresh) seen.add(record.id)
      for (const record of fresh) {
        if (stopped || ctx.closing) return
        try {
          await runOne(ss, record)
        } catch (error) {
          // Left claimed: this engine tries again on its next pass, another once the claim lapses.
          ctx.reportError(error, `workflow: schedule ${record.id} could not start its tick`)
        }
      }
      if (claimed.length < CLAIM_PAGE || fresh.length === 0) break
    }
    await armTimer(ss)
  }

  /** Runs a pass now, or right after the one running. */
  function kick() {
    if (!worker || !methods || stopped || ctx.closing) return
    if (pass) {
      again = true
      return
    }
    pass = ctx.track(
      runPass(methods)
        .catch((error) => ctx.reportError(error, 'workflow: schedules pass failed'))
        .finally(() => {
          pass = undefined
          if (again) {
            again = false
            kick()
          }
        }),
    )
  }

  const onTransition = (event: { instanceId: string; status: string }) => {
    if (event.status !== 'running' && awaited.delete(event.instanceId)) kick()
  }

  const pollLoop = () => {
    poll = setTimeout(() => {
      kick()
      if (!stopped && !ctx.closing) pollLoop()
    }, opts.pollInterval)
    poll.unref()
  }

  return {
    api,
    start() {
      if (!worker || !methods) return
      events.on('transition', onTransition)
      pollLoop()
      kick()
    },
    stop() {
      stopped = true
      events.off('transition', onTransition)
      if (poll) clearTimeout(poll)
      if (timer !== undefined) clock.clearTimeout(timer)
    },
  }
}
