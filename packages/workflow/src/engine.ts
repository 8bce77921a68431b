import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import {
  type Context,
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api'
import { EventEmitter } from 'eventemitter3'
import { ActivityTimeoutError, NonRetryableError } from './activity-errors.js'
import type { Clock } from './clock.js'
import { parseDuration } from './duration.js'
import { storeUnavailable, WorkflowError } from './errors.js'
import { MinHeap } from './heap.js'
import type { ActivityErrorInfo, AnyMachine, Machine, RetryPolicy, WorkflowEvent } from './machine.js'
import {
  type EngineOptions,
  type LoggerLike,
  parseEngineOptions,
  type ResolvedRetryPolicy,
  resolveRetryPolicy,
} from './options.js'
import type {
  Commit,
  CommitResult,
  HistoryKind,
  InstanceRecord,
  InstanceStatus,
  ListFilter,
  OutboxRecord,
  Store,
  TaskRecord,
  TimerRecord,
} from './store.js'
import { nextDue } from './store.js'
import {
  failInstance,
  ignoreStep,
  initialStep,
  migrateStep,
  rescheduleTask,
  retryStep,
  type Step,
  type StepResult,
  stateOf,
  transition,
} from './transition.js'
import { validateMachines } from './validate.js'

/** An instance as `get`, `start`, `send` and `list` return it. */
export interface Instance<C = unknown> {
  readonly id: string
  readonly machine: string
  /** The machine version this instance is pinned to. */
  readonly version: number
  readonly state: string
  readonly status: InstanceStatus
  readonly context: C
  /** Increases on every commit. */
  readonly revision: number
  readonly createdAt: Date
  readonly updatedAt: Date
  /** Timers armed in the current state, with their absolute deadlines. */
  readonly timers: readonly { readonly delay: string; readonly deadline: Date }[]
  /** The activity call pending in the current state, if any. */
  readonly tasks: readonly {
    readonly activity: string
    readonly idempotencyKey: string
    readonly attempt: number
    readonly runAt: Date
    readonly lastError?: ActivityErrorInfo | undefined
  }[]
  /** Why the instance is `failed`. */
  readonly failure?:
    | {
        readonly message: string
        readonly code?: string | undefined
        readonly activity?: string | undefined
        readonly at: Date
      }
    | undefined
}

/** One committed transition, as `engine.history` returns it. */
export interface HistoryEntry {
  readonly seq: number
  readonly at: Date
  readonly kind: HistoryKind
  readonly event: unknown
  /** null for the start. */
  readonly from: string | null
  readonly to: string
}

export interface SendResult<C = unknown> {
  /** `applied`: committed; `duplicate`: this event id was already processed; `ignored`: not accepted here, recorded in the history. */
  readonly status: 'applied' | 'duplicate' | 'ignored'
  readonly instance: Instance<C>
}

export interface SendOptions {
  /** Overrides the engine's `unhandledEvents` for this event. */
  readonly unhandledEvents?: 'reject' | 'ignore' | undefined
}

export interface StartOptions<I> {
  /** Instance id; a random UUID if omitted. Starting an id that exists throws WORKFLOW_DUPLICATE_INSTANCE. */
  readonly id?: string | undefined
  readonly input?: I | undefined
  /** Machine version; default: the highest registered. */
  readonly version?: number | undefined
}

/** What an activity receives besides its input. */
export interface ActivityContext {
  /** Stable for this call across retries and restarts: pass it to the service you call so a repeat is a no-op. */
  readonly idempotencyKey: string
  /** 1 on the first attempt. */
  readonly attempt: number
  readonly instanceId: string
  readonly machine: string
  readonly activity: string
  /** Aborted on timeout and when the engine closes. */
  readonly signal: AbortSignal
}

// biome-ignore lint/suspicious/noExplicitAny: activities take whatever input their invoke computes
export type ActivityFunction = (input: any, context: ActivityContext) => unknown

export interface ActivityDefinition {
  readonly run: ActivityFunction
  readonly retry?: RetryPolicy | undefined
  /** Per attempt. Default: the engine's `activityTimeout`. */
  readonly timeout?: number | string | undefined
}

/** The part of a @backplane/messaging `Broker` the engine uses: any broker with this shape works. */
export interface WorkflowBroker {
  publish(
    topic: string,
    data: unknown,
    options?: { id?: string; key?: string; headers?: Record<string, string> },
  ): Promise<unknown>
  subscribe(
    topic: string,
    handler: (message: BrokerMessage) => Promise<void>,
    // biome-ignore lint/suspicious/noExplicitAny: passed through to the broker as given
    options?: any,
  ): Promise<{ close(): Promise<void> }>
}

/** The fields of a delivered message `listen`'s map function can read. */
export interface BrokerMessage {
  readonly id: string
  readonly topic: string
  readonly key?: string | undefined
  readonly data: unknown
  readonly headers: Readonly<Record<string, string>>
}

export interface ListenOptions {
  /** Passed to `broker.subscribe` (group, from, maxAttempts, deadLetter, concurrency, …). */
  readonly subscribe?: Record<string, unknown> | undefined
  /** Overrides the engine's `unhandledEvents`. With `reject`, a message whose event is not accepted is dead-lettered without retries. */
  readonly unhandledEvents?: 'reject' | 'ignore' | undefined
}

/** `listen`'s map: which instance a message is for and the event it means; undefined skips the message. */
export type ListenMap = (message: BrokerMessage) => { instance: string; event: WorkflowEvent } | undefined | null

export interface TransitionEvent {
  readonly instanceId: string
  readonly machine: string
  readonly version: number
  readonly kind: HistoryKind
  readonly event: unknown
  readonly from: string | null
  readonly to: string
  readonly status: InstanceStatus
  readonly revision: number
}

export interface EngineEvents {
  /** A transition was committed (by this engine). */
  transition: (event: TransitionEvent) => void
  /** An activity attempt failed; `willRetry` tells whether another attempt is scheduled. */
  activityFailed: (event: {
    instanceId: string
    activity: string
    idempotencyKey: string
    attempt: number
    error: ActivityErrorInfo
    willRetry: boolean
    retryAt: Date | undefined
  }) => void
  /** An instance reached a final state. */
  instanceDone: (event: { instanceId: string; machine: string; state: string }) => void
  /** An instance became `failed` (see `retry`). */
  instanceFailed: (event: {
    instanceId: string
    machine: string
    state: string
    failure: NonNullable<Instance['failure']>
  }) => void
  /** Publishing an outbox message failed; it will be published again later. */
  outboxFailed: (event: { id: string; topic: string; error: Error }) => void
  /**
   * This engine took instances over (their work was due and no live process held them: left by a
   * crashed or stopped process, or committed by a non-worker such as the CLI), or resumed them at start.
   */
  claimed: (event: { instances: string[]; atStart: boolean }) => void
  /** A background step failed (store unreachable, …); it is retried. Emitted only when someone listens. */
  error: (error: Error) => void
}

export interface EngineStats {
  /** Instances this engine drives (runs timers and activities for). */
  readonly owned: number
  /** Timers and delayed attempts waiting. */
  readonly scheduled: number
  /** Activity attempts running. */
  readonly running: number
  readonly cached: number
}

export interface Engine {
  /** Starts an instance: commits its initial state (running entry actions) and arms its timers and activity. */
  start<C, I>(machine: Machine<C, I>, options?: StartOptions<I>): Promise<Instance<C>>
  start<C = unknown>(machine: string, options?: StartOptions<unknown>): Promise<Instance<C>>
  /** Sends an event: committed before this resolves; a repeated `event.id` resolves `duplicate` without effect. */
  send<C = unknown>(instanceId: string, event: WorkflowEvent, options?: SendOptions): Promise<SendResult<C>>
  get<C = unknown>(instanceId: string): Promise<Instance<C>>
  list<C = unknown>(filter?: ListFilter): Promise<Instance<C>[]>
  history(instanceId: string): Promise<HistoryEntry[]>
  /** Sets a `failed` instance running again: its activity gets a fresh attempt budget (same idempotency key). */
  retry<C = unknown>(instanceId: string): Promise<Instance<C>>
  /** Moves an instance to another registered version of its machine through the `migrations` hooks. */
  migrate<C = unknown>(instanceId: string, options?: { to?: number | undefined }): Promise<Instance<C>>
  /** Turns messages of a broker topic into events (message id = event id, so redeliveries are ignored). */
  listen(topic: string, map: ListenMap, options?: ListenOptions): Promise<{ close(): Promise<void> }>
  /** Resolves with the instance once `until` holds (checked on every transition and every `pollMs`). */
  waitFor<C = unknown>(
    instanceId: string,
    until: (instance: Instance<C>) => boolean,
    options?: { timeoutMs?: number | undefined },
  ): Promise<Instance<C>>
  stats(): EngineStats
  readonly events: EventEmitter<EngineEvents>
  /** This engine's lease owner id. */
  readonly owner: string
  /** What `createEngine` resumed: instances claimed with their timers re-armed and tasks queued, and how long it took. */
  readonly recovered: { readonly instances: number; readonly ms: number }
  /** Stops timers and polling, waits for running activities (up to `closeTimeout`), gives up leases, closes the store. */
  close(): Promise<void>
}

interface Scheduled {
  at: number
  instanceId: string
  kind: 'timer' | 'task'
  itemId: string
  attempt: number
  /** The trace context stored with the timer or task: its work runs in it. */
  trace: TraceCarrier | undefined
}

interface ActivityEntry {
  run: ActivityFunction
  retry: RetryPolicy | undefined
  timeout: number | string | undefined
}

const MAX_TIMEOUT = 2 ** 31 - 1
const CONFLICT_RETRIES = 50
const CLAIM_PAGE = 1000
const TRACER = '@backplane/workflow'

// ---------------------------------------------------------------- trace context

/** W3C trace-context headers (`traceparent`, `tracestate`, …) as the registered propagator writes them. */
type TraceCarrier = Readonly<Record<string, string>>

/** The active trace context as headers; undefined when there is nothing to carry (no context, no propagator). */
function activeCarrier(): TraceCarrier | undefined {
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  for (const _ in carrier) return carrier
  return undefined
}

/** Where stored work runs: in the trace it was committed in, else in none (not in whatever happens to be active). */
function contextOf(carrier: TraceCarrier | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT
}

/** Header names as written by hand may have any case: read them case-insensitively. */
const headerGetter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    if (Object.hasOwn(carrier, key)) return carrier[key]
    for (const name in carrier) if (name.toLowerCase() === key) return carrier[name]
    return undefined
  },
}

const hasHeader = (headers: TraceCarrier | undefined, lowerName: string): boolean => {
  if (!headers) return false
  for (const name in headers) if (name.toLowerCase() === lowerName) return true
  return false
}

/** Gives the timers and tasks the step creates (ids the previous record lacks) the trace of the transition. */
function traceNewWork(
  instance: InstanceRecord,
  previous: InstanceRecord | undefined,
  carrier: TraceCarrier,
): InstanceRecord {
  const isNew = (item: TimerRecord | TaskRecord, old: readonly (TimerRecord | TaskRecord)[] | undefined) =>
    item.trace === undefined && !old?.some((o) => o.id === item.id)
  let timers = instance.timers
  let tasks = instance.tasks
  if (timers.some((t) => isNew(t, previous?.timers)))
    timers = timers.map((t) => (isNew(t, previous?.timers) ? { ...t, trace: carrier } : t))
  if (tasks.some((t) => isNew(t, previous?.tasks)))
    tasks = tasks.map((t) => (isNew(t, previous?.tasks) ? { ...t, trace: carrier } : t))
  return timers === instance.timers && tasks === instance.tasks ? instance : { ...instance, timers, tasks }
}

/** Adds the transition's trace context to the headers of its outbox messages that carry none of their own. */
function traceOutbox(outbox: readonly OutboxRecord[], carrier: TraceCarrier): readonly OutboxRecord[] {
  if (outbox.length === 0) return outbox
  return outbox.map((message) =>
    hasHeader(message.headers, 'traceparent') ? message : { ...message, headers: { ...message.headers, ...carrier } },
  )
}

function publicInstance<C>(record: InstanceRecord): Instance<C> {
  return {
    id: record.id,
    machine: record.machine,
    version: record.version,
    state: record.state,
    status: record.status,
    context: record.context as C,
    revision: record.revision,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    timers: record.timers.map((timer) => ({ delay: timer.delay, deadline: new Date(timer.deadline) })),
    tasks: record.tasks.map((task) => ({
      activity: task.activity,
      idempotencyKey: task.key,
      attempt: task.attempt,
      runAt: new Date(task.runAt),
      lastError: task.lastError,
    })),
    failure: record.failure ? { ...record.failure, at: new Date(record.failure.at) } : undefined,
  }
}

function errorInfo(error: unknown, attempts: number): ActivityErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return {
      name: error.name,
      message: error.message,
      code: typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
      attempts,
    }
  }
  return { name: 'Error', message: String(error), attempts }
}

function backoffDelay(policy: ResolvedRetryPolicy, attempt: number): number {
  const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** Math.max(0, attempt - 1))
  return Math.round(policy.jitter ? base * (0.5 + Math.random() * 0.5) : base)
}

/**
 * Creates an engine: validates the definitions, opens the store, resumes every in-flight instance
 * (timers re-armed from their deadlines, activities whose results were not committed queued again),
 * then drives them.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const opts = parseEngineOptions(options)
  const store: Store = opts.store
  const clock: Clock = opts.clock
  const logger: LoggerLike = opts.logger
  const owner = opts.owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`
  const worker = opts.worker
  const broker = opts.broker as WorkflowBroker | undefined

  const activities = new Map<string, ActivityEntry>()
  for (const [name, value] of Object.entries(opts.activities ?? {})) {
    if (typeof value === 'function')
      activities.set(name, { run: value as ActivityFunction, retry: undefined, timeout: undefined })
    else activities.set(name, { run: value.run as ActivityFunction, retry: value.retry, timeout: value.timeout })
  }
  validateMachines(opts.machines, {
    activities: worker ? new Set(activities.keys()) : undefined,
    broker: worker ? broker !== undefined : undefined,
  })
  const machines = new Map<string, Map<number, AnyMachine>>()
  const latest = new Map<string, AnyMachine>()
  for (const machine of opts.machines) {
    let versions = machines.get(machine.id)
    if (!versions) {
      versions = new Map()
      machines.set(machine.id, versions)
    }
    versions.set(machine.version, machine)
    const top = latest.get(machine.id)
    if (!top || top.version < machine.version) latest.set(machine.id, machine)
  }

  const events = new EventEmitter<EngineEvents>()
  const cache = new Map<string, InstanceRecord>()
  const owned = new Set<string>()
  const lanes = new Map<string, Promise<unknown>>()
  const heap = new MinHeap<Scheduled>()
  const scheduledKeys = new Set<string>()
  const running = new Map<string, AbortController>()
  const waiters = new Map<string, Set<() => void>>()
  const pendingAcks: string[] = []
  const background = new Set<Promise<unknown>>()
  let heapTimer: unknown
  let heapTimerAt = Number.POSITIVE_INFINITY
  let pollTimer: ReturnType<typeof setTimeout> | undefined
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined
  let lastHeartbeat = 0
  let lostLease = false
  let closing: Promise<void> | undefined
  let activeActivities = 0
  const activityQueue: (() => void)[] = []

  const reportError = (error: unknown, what: string) => {
    const err = error instanceof Error ? error : new Error(String(error))
    logger.error({ err: err.message, code: (err as WorkflowError).code }, what)
    if (events.listenerCount('error') > 0) events.emit('error', err)
  }

  const track = <T>(promise: Promise<T>): Promise<T> => {
    background.add(promise)
    promise.then(
      () => background.delete(promise),
      () => background.delete(promise),
    )
    return promise
  }

  const assertOpen = () => {
    if (closing) throw new WorkflowError('WORKFLOW_CLOSED', 'the engine is closed: create a new one')
  }

  const machineFor = (record: InstanceRecord): AnyMachine => {
    const machine = machines.get(record.machine)?.get(record.version)
    if (!machine) {
      throw new WorkflowError(
        machines.has(record.machine) ? 'WORKFLOW_UNKNOWN_VERSION' : 'WORKFLOW_UNKNOWN_MACHINE',
        `instance ${record.id} runs ${record.machine} v${record.version}, which this engine does not have: register every version that still has instances (registered: ${[...machines.keys()].map((id) => `${id} v${[...(machines.get(id)?.keys() ?? [])].join(',')}`).join('; ') || 'none'})`,
        { instanceId: record.id },
      )
    }
    return machine
  }

  const remember = (record: InstanceRecord) => {
    cache.delete(record.id)
    cache.set(record.id, record)
    if (cache.size > opts.cacheSize) {
      for (const id of cache.keys()) {
        if (cache.size <= opts.cacheSize) break
        if (!lanes.has(id)) cache.delete(id)
        else break
      }
    }
  }

  const load = async (id: string): Promise<InstanceRecord | undefined> => {
    const stored = (await store.load(id)) as (InstanceRecord & { owner?: string | null }) | undefined
    if (!stored) {
      cache.delete(id)
      return undefined
    }
    const { owner: storedOwner, ...record } = stored
    if (storedOwner !== undefined) {
      if (storedOwner === owner) owned.add(id)
      else owned.delete(id)
    }
    remember(record)
    return record
  }

  /** Runs `fn` after every earlier operation on the same instance (one at a time per instance in this process). */
  const serial = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const previous = lanes.get(id)
    const run = previous ? previous.then(fn) : fn()
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    lanes.set(id, tail)
    tail.then(() => {
      if (lanes.get(id) === tail) lanes.delete(id)
    })
    return run
  }

  // ---------------------------------------------------------------- commits

  type Decision<T> =
    | {
        readonly commit: Step | { readonly instance: InstanceRecord }
        readonly eventId?: string | undefined
        readonly done: (record: InstanceRecord) => T
        readonly duplicate?: () => Promise<T>
      }
    | { readonly result: T }

  const ownerFor = (step: Step | { instance: InstanceRecord }, replaced: boolean): string | null | undefined => {
    if (nextDue(step.instance) === null) return null
    if (!replaced) return undefined
    return worker ? owner : null
  }

  const storeCommit = async (commit: Commit): Promise<CommitResult> => {
    try {
      return await store.commit(commit)
    } catch (error) {
      throw storeUnavailable(store.kind, 'commit', error, commit.instance.id)
    }
  }

  /**
   * Loads the instance (cache first), computes a decision and commits it with a compare-and-set on
   * the revision; on a conflict (another process committed first) reloads and computes again.
   */
  const mutate = <T>(id: string, decide: (record: InstanceRecord | undefined) => Decision<T>): Promise<T> =>
    // `serial` runs this in the caller's async context (a request's span, a consumer's, a timer's or
    // an activity's trace): what the step creates carries that trace on.
    serial(id, async () => {
      const carrier = activeCarrier()
      for (let attempt = 0; ; attempt++) {
        const record = attempt === 0 && cache.has(id) ? cache.get(id) : await load(id)
        const decision = decide(record)
        if ('result' in decision) return decision.result
        const step = decision.commit
        const replaced = 'workReplaced' in step ? step.workReplaced : false
        const isStep = 'history' in step
        const instance = carrier ? traceNewWork(step.instance, record, carrier) : step.instance
        const traced: Step | undefined = isStep
          ? { ...step, instance, outbox: carrier ? traceOutbox(step.outbox, carrier) : step.outbox }
          : undefined
        const now = clock.now()
        const commit: Commit = {
          instance,
          expectedRevision: record ? record.revision : 0,
          owner: ownerFor(step, replaced),
          history: traced ? [traced.history] : [],
          eventId: decision.eventId,
          outbox: traced ? traced.outbox : [],
          outboxHoldUntil: now + opts.leaseMs,
        }
        const result = await storeCommit(commit)
        if (result.status === 'committed') {
          remember(instance)
          if (commit.owner === owner) owned.add(id)
          else if (commit.owner === null) owned.delete(id)
          afterCommit(instance, traced)
          return decision.done(instance)
        }
        if (result.status === 'duplicate' && decision.duplicate) return decision.duplicate()
        if (result.status === 'exists') {
          throw new WorkflowError('WORKFLOW_DUPLICATE_INSTANCE', `an instance with id ${id} already exists`, {
            instanceId: id,
          })
        }
        cache.delete(id)
        if (attempt >= CONFLICT_RETRIES) {
          throw new WorkflowError(
            'WORKFLOW_CONFLICT',
            `instance ${id} kept changing under this engine (${attempt} conflicts)`,
            { instanceId: id },
          )
        }
      }
    })

  const afterCommit = (record: InstanceRecord, step: Step | undefined) => {
    if (step) {
      const { history } = step
      logger.debug(
        { instance: record.id, from: history.from, to: history.to, kind: history.kind },
        'workflow transition',
      )
      if (events.listenerCount('transition') > 0) {
        events.emit('transition', {
          instanceId: record.id,
          machine: record.machine,
          version: record.version,
          kind: history.kind,
          event: history.event,
          from: history.from,
          to: history.to,
          status: record.status,
          revision: record.revision,
        })
      }
      if (history.kind !== 'failed' && record.status === 'done')
        events.emit('instanceDone', { instanceId: record.id, machine: record.machine, state: record.state })
      if (history.kind === 'failed' && record.failure) {
        logger.warn({ instance: record.id, failure: record.failure.message }, 'workflow instance failed')
        events.emit('instanceFailed', {
          instanceId: record.id,
          machine: record.machine,
          state: record.state,
          failure: { ...record.failure, at: new Date(record.failure.at) },
        })
      }
      if (step.outbox.length > 0 && broker && worker) track(publishOutbox(step.outbox))
    }
    if (worker && owned.has(record.id) && !closing) scheduleWork(record)
    const list = waiters.get(record.id)
    if (list) for (const wake of list) wake()
  }

  // ---------------------------------------------------------------- scheduling

  const scheduleWork = (record: InstanceRecord) => {
    if (record.status !== 'running') return
    for (const timer of record.timers)
      push({
        at: timer.deadline,
        instanceId: record.id,
        kind: 'timer',
        itemId: timer.id,
        attempt: 0,
        trace: timer.trace,
      })
    for (const task of record.tasks)
      push({
        at: task.runAt,
        instanceId: record.id,
        kind: 'task',
        itemId: task.id,
        attempt: task.attempt,
        trace: task.trace,
      })
  }

  const push = (item: Scheduled) => {
    const key = `${item.instanceId}\u0000${item.kind}\u0000${item.itemId}\u0000${item.attempt}`
    if (scheduledKeys.has(key)) return
    scheduledKeys.add(key)
    if (item.kind === 'task' && item.at <= clock.now()) {
      dispatch(item, key)
      return
    }
    heap.push(item)
    armHeapTimer()
  }

  const armHeapTimer = () => {
    const top = heap.peek()
    if (!top || closing) return
    if (heapTimer !== undefined && top.at >= heapTimerAt) return
    if (heapTimer !== undefined) clock.clearTimeout(heapTimer)
    heapTimerAt = top.at
    heapTimer = clock.setTimeout(fireDue, Math.min(MAX_TIMEOUT, Math.max(0, top.at - clock.now())))
  }

  const fireDue = () => {
    heapTimer = undefined
    heapTimerAt = Number.POSITIVE_INFINITY
    const now = clock.now()
    for (;;) {
      const top = heap.peek()
      if (!top || top.at > now) break
      heap.pop()
      dispatch(top, `${top.instanceId}\u0000${top.kind}\u0000${top.itemId}\u0000${top.attempt}`)
    }
    armHeapTimer()
  }

  const dispatch = (item: Scheduled, key: string) => {
    if (closing) return
    // In the trace the timer or task was committed in, not in the context of whoever armed the clock.
    context.with(contextOf(item.trace), () => {
      if (item.kind === 'timer') {
        track(fireTimer(item).finally(() => scheduledKeys.delete(key)))
      } else {
        track(runTask(item).finally(() => scheduledKeys.delete(key)))
      }
    })
  }

  const retryLater = (item: Scheduled, error: unknown) => {
    reportError(error, `workflow: ${item.kind} of ${item.instanceId} could not be committed; retrying in 1 s`)
    if (closing) return
    setTimeout(() => {
      if (!closing) push({ ...item, at: clock.now() })
    }, 1000).unref()
  }

  const failDecision = (
    record: InstanceRecord,
    error: WorkflowError,
    event: unknown,
    activity?: string,
  ): Decision<void> => ({
    commit: failInstance(
      record,
      { message: error.message, code: error.code, activity, at: clock.now() },
      event,
      clock.now(),
    ),
    done: () => undefined,
  })

  const fireTimer = async (item: Scheduled) => {
    try {
      await mutate<void>(item.instanceId, (record) => {
        if (!record || !owned.has(item.instanceId)) return { result: undefined }
        const machine = machineFor(record)
        const result = transition(machine, record, { kind: 'timer', timerId: item.itemId }, clock.now())
        return decideBackground(record, result, { type: 'after', timer: item.itemId })
      })
    } catch (error) {
      if (WorkflowError.is(error, 'WORKFLOW_UNKNOWN_VERSION') || WorkflowError.is(error, 'WORKFLOW_UNKNOWN_MACHINE')) {
        reportError(error, 'workflow: cannot fire a timer')
        return
      }
      retryLater(item, error)
    }
  }

  const decideBackground = (
    record: InstanceRecord,
    result: StepResult,
    event: unknown,
    activity?: string,
  ): Decision<void> => {
    if (result.type === 'step') return { commit: result, done: () => undefined }
    if (result.type === 'error') return failDecision(record, result.error, event, activity)
    return { result: undefined }
  }

  // ---------------------------------------------------------------- activities

  const acquire = (): Promise<void> => {
    if (activeActivities < opts.concurrency) {
      activeActivities++
      return Promise.resolve()
    }
    return new Promise((resolve) => activityQueue.push(resolve))
  }
  const release = () => {
    const next = activityQueue.shift()
    if (next) next()
    else activeActivities--
  }

  const policyFor = (
    machine: AnyMachine,
    stateName: string,
    activity: string,
  ): { retry: ResolvedRetryPolicy; timeout: number } => {
    const entry = activities.get(activity)
    const invoke = stateOf(machine, stateName)?.invoke
    const retry = resolveRetryPolicy(opts.retry, entry?.retry, invoke?.retry)
    const timeout = parseDuration(invoke?.timeout ?? entry?.timeout ?? opts.activityTimeout) ?? opts.activityTimeout
    return { retry, timeout }
  }

  const runTask = async (item: Scheduled) => {
    const { instanceId, itemId: taskId } = item
    const runKey = `${instanceId}\u0000${taskId}`
    if (running.has(runKey) || closing) return
    let record: InstanceRecord | undefined
    try {
      record = cache.get(instanceId) ?? (await load(instanceId))
    } catch (error) {
      retryLater({ at: 0, instanceId, kind: 'task', itemId: taskId, attempt: 0, trace: item.trace }, error)
      return
    }
    const task = record?.tasks.find((t) => t.id === taskId)
    if (!record || !task || record.status !== 'running' || !owned.has(instanceId)) return
    let machine: AnyMachine
    try {
      machine = machineFor(record)
    } catch (error) {
      reportError(error, 'workflow: cannot run an activity')
      return
    }
    const entry = activities.get(task.activity)
    const { retry, timeout } = policyFor(machine, record.state, task.activity)
    const controller = new AbortController()
    running.set(runKey, controller)
    await acquire()
    let outcome: { ok: true; output: unknown } | { ok: false; error: unknown }
    let timeoutHandle: unknown
    let span: Span | undefined
    let spanContext = context.active()
    try {
      if (closing) return
      // A child of the transition that committed the call (the active context: see dispatch); the
      // transition its outcome causes continues from it.
      span = trace.getTracer(TRACER).startSpan(`activity ${task.activity}`, {
        kind: SpanKind.INTERNAL,
        attributes: {
          'workflow.instance.id': instanceId,
          'workflow.machine': record.machine,
          'workflow.machine.version': record.version,
          'workflow.state': record.state,
          'workflow.activity': task.activity,
          'workflow.activity.attempt': task.attempt,
          'workflow.activity.idempotency_key': task.key,
        },
      })
      // Without an SDK and without a trace the span is an invalid no-op one: nothing to make active.
      if (isSpanContextValid(span.spanContext())) spanContext = trace.setSpan(spanContext, span)
      if (!entry) throw new NonRetryableError(`activity ${task.activity} is not registered in this engine`)
      const activityContext: ActivityContext = {
        idempotencyKey: task.key,
        attempt: task.attempt,
        instanceId,
        machine: record.machine,
        activity: task.activity,
        signal: controller.signal,
      }
      // Settles when the attempt times out or the engine closes, whatever the activity does with its signal.
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
      })
      aborted.catch(() => undefined)
      timeoutHandle = clock.setTimeout(
        () => controller.abort(new ActivityTimeoutError(task.activity, timeout)),
        Math.min(MAX_TIMEOUT, timeout),
      )
      const output = await Promise.race([
        context.with(spanContext, async () => entry.run(task.input, activityContext)),
        aborted,
      ])
      JSON.stringify(output ?? null)
      outcome = { ok: true, output: output ?? null }
    } catch (error) {
      outcome = { ok: false, error }
    } finally {
      if (timeoutHandle !== undefined) clock.clearTimeout(timeoutHandle)
      release()
      running.delete(runKey)
    }
    if (span) {
      if (!outcome.ok) {
        const error = outcome.error
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
        span.setAttribute('error.type', error instanceof Error ? error.name : 'Error')
        if (error instanceof Error) span.recordException(error)
      }
      span.end()
    }
    // Stopping: the result is not committed; the task runs again after the restart (at least once).
    if (closing && controller.signal.aborted) return
    await context.with(spanContext, () => commitOutcome(instanceId, taskId, task.attempt, task.key, retry, outcome))
  }

  const commitOutcome = async (
    instanceId: string,
    taskId: string,
    attempt: number,
    key: string,
    retry: ResolvedRetryPolicy,
    outcome: { ok: true; output: unknown } | { ok: false; error: unknown },
  ): Promise<void> => {
    let failedEvent: Parameters<EngineEvents['activityFailed']>[0] | undefined
    for (let tries = 0; ; tries++) {
      try {
        await mutate<void>(instanceId, (record) => {
          failedEvent = undefined
          if (!record) return { result: undefined }
          const task = record.tasks.find((t) => t.id === taskId)
          if (!task || record.status !== 'running') return { result: undefined }
          const machine = machineFor(record)
          const now = clock.now()
          if (outcome.ok) {
            const result = transition(machine, record, { kind: 'activity.done', taskId, output: outcome.output }, now)
            return decideBackground(
              record,
              result,
              { type: 'activity.done', activity: task.activity, output: outcome.output },
              task.activity,
            )
          }
          const info = errorInfo(outcome.error, task.attempt)
          const retryable =
            !NonRetryableError.is(outcome.error) &&
            !retry.nonRetryable.includes(info.name) &&
            !(info.code !== undefined && retry.nonRetryable.includes(info.code)) &&
            task.attempt < retry.maxAttempts
          const runAt = retryable ? now + backoffDelay(retry, task.attempt) : undefined
          failedEvent = {
            instanceId,
            activity: task.activity,
            idempotencyKey: task.key,
            attempt: task.attempt,
            error: info,
            willRetry: retryable,
            retryAt: runAt === undefined ? undefined : new Date(runAt),
          }
          if (runAt !== undefined) {
            return { commit: { instance: rescheduleTask(record, taskId, runAt, info, now) }, done: () => undefined }
          }
          const result = transition(machine, record, { kind: 'activity.error', taskId, error: info }, now)
          return decideBackground(
            record,
            result,
            { type: 'activity.error', activity: task.activity, error: info },
            task.activity,
          )
        })
        if (failedEvent) {
          logger.warn(
            {
              instance: instanceId,
              activity: failedEvent.activity,
              attempt,
              key,
              err: failedEvent.error.message,
              willRetry: failedEvent.willRetry,
            },
            'workflow activity failed',
          )
          events.emit('activityFailed', failedEvent)
        }
        return
      } catch (error) {
        if (
          WorkflowError.is(error, 'WORKFLOW_UNKNOWN_VERSION') ||
          WorkflowError.is(error, 'WORKFLOW_UNKNOWN_MACHINE')
        ) {
          reportError(error, 'workflow: cannot commit an activity result')
          return
        }
        reportError(error, `workflow: the result of ${key} could not be committed; retrying`)
        if (closing) return
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.min(tries, 5))))
        if (closing) return
      }
    }
  }

  // ---------------------------------------------------------------- outbox

  const publishOutbox = async (messages: readonly OutboxRecord[]) => {
    if (!broker) return
    for (const message of messages) {
      try {
        const publishOptions: { id: string; key?: string; headers?: Record<string, string> } = { id: message.id }
        if (message.key !== undefined && message.key !== null) publishOptions.key = message.key
        // Published in the message's own trace (or none: not the context of whoever committed or
        // polled it). The broker writes that trace into the message again (@backplane/messaging:
        // its producer span's traceparent), so the stored trace headers are not passed on twice.
        let parent: Context = ROOT_CONTEXT
        if (message.headers) {
          const headers = { ...message.headers }
          // Only a trace the registered propagator reads is taken over; without one the headers pass as they are.
          const extracted = hasHeader(headers, 'traceparent')
            ? propagation.extract(ROOT_CONTEXT, headers, headerGetter)
            : undefined
          if (extracted && trace.getSpanContext(extracted)) {
            parent = extracted
            for (const name of Object.keys(headers)) {
              const lower = name.toLowerCase()
              if (lower === 'traceparent' || lower === 'tracestate') delete headers[name]
            }
            if (Object.keys(headers).length > 0) publishOptions.headers = headers
          } else publishOptions.headers = headers
        }
        await context.with(parent, () => broker.publish(message.topic, message.data, publishOptions))
        pendingAcks.push(message.id)
        if (pendingAcks.length === 1) setImmediate(flushAcks)
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error))
        logger.warn(
          { id: message.id, topic: message.topic, err: err.message },
          'workflow outbox publish failed; will retry',
        )
        events.emit('outboxFailed', { id: message.id, topic: message.topic, error: err })
        return // keep order: the rest of this batch waits for the poller
      }
    }
  }

  const flushAcks = () => {
    const ids = pendingAcks.splice(0)
    if (ids.length === 0) return
    track(store.ackOutbox(ids)).catch((error) =>
      reportError(error, 'workflow: could not remove published outbox rows (they will be published again)'),
    )
  }

  // ---------------------------------------------------------------- claims, leases

  const claimAll = async (initial: boolean): Promise<number> => {
    let total = 0
    const includeOwn = initial || lostLease
    const takeover = initial && !store.shared
    // Claims that can return rows this engine already holds page through them by id.
    let afterId: string | undefined = includeOwn || takeover ? '' : undefined
    for (;;) {
      const now = clock.now()
      const claimed = await store.claim({
        owner,
        now,
        dueBefore: initial ? Number.MAX_SAFE_INTEGER : now + opts.pollMs,
        limit: CLAIM_PAGE,
        includeOwn,
        takeover,
        afterId,
      })
      for (const claimedRecord of claimed) {
        const { owner: _owner, ...record } = claimedRecord as InstanceRecord & { owner?: string | null }
        owned.add(record.id)
        if (!lanes.has(record.id)) remember(record)
        scheduleWork(record)
      }
      if (afterId !== undefined && claimed.length > 0) afterId = (claimed[claimed.length - 1] as InstanceRecord).id
      total += claimed.length
      if (claimed.length > 0 && events.listenerCount('claimed') > 0)
        events.emit('claimed', { instances: claimed.map((r) => r.id), atStart: initial })
      if (claimed.length < CLAIM_PAGE) break
    }
    lostLease = false
    return total
  }

  const pollOutbox = async () => {
    if (!broker) return
    for (;;) {
      const now = clock.now()
      const rows = await store.claimOutbox({ now, limit: 500, holdUntil: now + opts.leaseMs })
      if (rows.length === 0) return
      await publishOutbox(rows)
      if (rows.length < 500) return
    }
  }

  const heartbeat = async () => {
    try {
      await store.heartbeat(owner, clock.now() + opts.leaseMs)
      lastHeartbeat = clock.now()
    } catch (error) {
      reportError(error, 'workflow: lease heartbeat failed')
      if (clock.now() - lastHeartbeat > opts.leaseMs && !lostLease) {
        // Others may take our instances over now: stop driving them, claim them again once back.
        logger.warn({ owner }, 'workflow lease lost: dropping local timers until the store answers again')
        lostLease = true
        heap.clear()
        scheduledKeys.clear()
        owned.clear()
      }
    }
  }

  const pollLoop = () => {
    pollTimer = setTimeout(async () => {
      if (closing) return
      try {
        await claimAll(false)
        await pollOutbox()
      } catch (error) {
        reportError(error, 'workflow: poll failed')
      }
      if (!closing) pollLoop()
    }, opts.pollMs)
    pollTimer.unref()
  }

  const heartbeatLoop = () => {
    heartbeatTimer = setTimeout(
      async () => {
        if (closing) return
        await heartbeat()
        if (!closing) heartbeatLoop()
      },
      Math.max(50, Math.floor(opts.leaseMs / 3)),
    )
    heartbeatTimer.unref()
  }

  // ---------------------------------------------------------------- API

  const unknownInstance = (id: string) =>
    new WorkflowError('WORKFLOW_UNKNOWN_INSTANCE', `no workflow instance with id ${JSON.stringify(id)}`, {
      instanceId: id,
    })

  const checkId = (id: unknown, what: string): string => {
    if (typeof id !== 'string' || id.length === 0 || id.length > 200)
      throw new WorkflowError(
        'WORKFLOW_INVALID_OPTIONS',
        `${what}: expected an instance id (a non-empty string of at most 200 characters), got ${JSON.stringify(id)}`,
      )
    return id
  }

  const storeRead = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (error) {
      throw storeUnavailable(store.kind, what, error)
    }
  }

  let recovered = { instances: 0, ms: 0 }
  const engine: Engine = {
    owner,
    events,
    get recovered() {
      return recovered
    },
    async start(machineRef: string | AnyMachine, startOptions: StartOptions<unknown> = {}) {
      assertOpen()
      const machineId = typeof machineRef === 'string' ? machineRef : machineRef?.id
      const versions = machines.get(machineId as string)
      if (!versions) {
        throw new WorkflowError(
          'WORKFLOW_UNKNOWN_MACHINE',
          `no machine ${JSON.stringify(machineId)} is registered (registered: ${[...machines.keys()].join(', ') || 'none'})`,
        )
      }
      const version =
        startOptions.version ??
        (typeof machineRef === 'string' ? undefined : machineRef.version) ??
        (latest.get(machineId as string) as AnyMachine).version
      const machine = versions.get(version)
      if (!machine) {
        throw new WorkflowError(
          'WORKFLOW_UNKNOWN_VERSION',
          `machine ${machineId} has no version ${version} (registered: ${[...versions.keys()].join(', ')})`,
        )
      }
      const id = startOptions.id === undefined ? randomUUID() : checkId(startOptions.id, 'start')
      const step = initialStep(machine, id, startOptions.input, clock.now())
      if (step.type !== 'step')
        throw step.type === 'error' ? step.error : new WorkflowError('WORKFLOW_INVALID_CONTEXT', `cannot start ${id}`)
      return mutate(id, (record) => {
        if (record)
          throw new WorkflowError(
            'WORKFLOW_DUPLICATE_INSTANCE',
            `an instance with id ${id} already exists (${record.machine} v${record.version}, ${record.status})`,
            { instanceId: id },
          )
        return { commit: step, done: (r) => publicInstance(r) }
      })
    },

    async send(instanceId, event, sendOptions = {}) {
      assertOpen()
      checkId(instanceId, 'send')
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string' || event.type === '') {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): expected an event object { type: 'NAME', id?, ...data }, got ${JSON.stringify(event)}`,
          { instanceId },
        )
      }
      if (event.id !== undefined && (typeof event.id !== 'string' || event.id === '')) {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): event.id must be a non-empty string when given, got ${JSON.stringify(event.id)}`,
          { instanceId },
        )
      }
      try {
        JSON.stringify(event)
      } catch (error) {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): the event is not JSON-serializable: ${(error as Error).message}`,
          { instanceId, cause: error },
        )
      }
      const unhandled = sendOptions.unhandledEvents ?? opts.unhandledEvents
      const duplicate = async (): Promise<SendResult> => {
        const current = await storeRead('load', () => load(instanceId))
        if (!current) throw unknownInstance(instanceId)
        return { status: 'duplicate', instance: publicInstance(current) }
      }
      const outcome = await mutate<SendResult | { rejected: WorkflowError }>(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        const machine = machineFor(record)
        const result = transition(machine, record, { kind: 'event', event }, clock.now())
        if (result.type === 'step') {
          return {
            commit: result,
            eventId: event.id,
            done: (r) => ({ status: 'applied', instance: publicInstance(r) }),
            duplicate,
          }
        }
        if (result.type === 'error') return { result: { rejected: result.error } }
        const reason = result.type === 'not-accepted' ? result.reason : 'stale'
        if (unhandled === 'ignore') {
          return {
            commit: ignoreStep(record, event, reason, clock.now()),
            eventId: event.id,
            done: (r) => ({ status: 'ignored', instance: publicInstance(r) }),
            duplicate,
          }
        }
        return {
          result: {
            rejected: new WorkflowError(
              'WORKFLOW_EVENT_NOT_ACCEPTED',
              `event ${event.type} was not accepted by ${instanceId} (${record.machine} v${record.version}, state ${record.state}): ${reason}`,
              { instanceId },
            ),
          },
        }
      })
      if (!('rejected' in outcome)) return outcome as SendResult<never>
      // A repeated event id is acknowledged even when the state has moved on and would reject it.
      if (
        event.id !== undefined &&
        (await storeRead('hasEvent', () => store.hasEvent(instanceId, event.id as string)))
      ) {
        return (await duplicate()) as SendResult<never>
      }
      throw outcome.rejected
    },

    async get(instanceId) {
      checkId(instanceId, 'get')
      const record = await storeRead('load', () => store.load(instanceId))
      if (!record) throw unknownInstance(instanceId)
      return publicInstance(record)
    },

    async list(filter = {}) {
      const records = await storeRead('list', () => store.list(filter))
      return records.map((record) => publicInstance(record))
    },

    async history(instanceId) {
      checkId(instanceId, 'history')
      const rows = await storeRead('history', () => store.history(instanceId))
      if (rows.length === 0 && !(await storeRead('load', () => store.load(instanceId))))
        throw unknownInstance(instanceId)
      return rows.map((row) => ({
        seq: row.seq,
        at: new Date(row.at),
        kind: row.kind,
        event: row.event,
        from: row.from,
        to: row.to,
      }))
    },

    async retry(instanceId) {
      assertOpen()
      checkId(instanceId, 'retry')
      return mutate(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        if (record.status !== 'failed') {
          throw new WorkflowError(
            'WORKFLOW_NOT_FAILED',
            `instance ${instanceId} is ${record.status}, not failed: only a failed instance can be retried`,
            { instanceId },
          )
        }
        machineFor(record)
        return { commit: retryStep(record, clock.now()), done: (r) => publicInstance(r) }
      }) as Promise<Instance<never>>
    },

    async migrate(instanceId, migrateOptions = {}) {
      assertOpen()
      checkId(instanceId, 'migrate')
      return mutate(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        const versions = machines.get(record.machine)
        if (!versions)
          throw new WorkflowError(
            'WORKFLOW_UNKNOWN_MACHINE',
            `machine ${record.machine} of ${instanceId} is not registered`,
            { instanceId },
          )
        const to = migrateOptions.to ?? (latest.get(record.machine) as AnyMachine).version
        if (to === record.version) return { result: publicInstance(record) }
        if (to < record.version) {
          throw new WorkflowError(
            'WORKFLOW_MIGRATION_FAILED',
            `instance ${instanceId} is on v${record.version}: migrations go forward only (asked for v${to})`,
            { instanceId },
          )
        }
        const result = migrateStep(versions, record, to, clock.now())
        if (result.type === 'error') throw result.error
        if (result.type !== 'step')
          throw new WorkflowError('WORKFLOW_MIGRATION_FAILED', `cannot migrate ${instanceId}`, { instanceId })
        return { commit: result, done: (r) => publicInstance(r) }
      }) as Promise<Instance<never>>
    },

    async listen(topic, map, listenOptions = {}) {
      assertOpen()
      if (!broker)
        throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', 'listen needs a broker: pass createEngine({ broker })')
      if (typeof map !== 'function')
        throw new WorkflowError(
          'WORKFLOW_INVALID_OPTIONS',
          'listen: expected a map function (message) => ({ instance, event }) as the second argument',
        )
      const unhandled = listenOptions.unhandledEvents ?? opts.unhandledEvents
      return broker.subscribe(
        topic,
        async (message: BrokerMessage) => {
          let mapped: ReturnType<ListenMap>
          try {
            mapped = map(message)
          } catch (error) {
            throw new NonRetryableError(
              `listen(${topic}): map threw for message ${message.id}: ${(error as Error)?.message ?? error}`,
              { cause: error },
            )
          }
          if (!mapped) return
          const event = mapped.event.id === undefined ? { ...mapped.event, id: message.id } : mapped.event
          try {
            await engine.send(mapped.instance, event, { unhandledEvents: unhandled })
          } catch (error) {
            if (
              WorkflowError.is(error) &&
              [
                'WORKFLOW_UNKNOWN_INSTANCE',
                'WORKFLOW_EVENT_NOT_ACCEPTED',
                'WORKFLOW_INVALID_EVENT',
                'WORKFLOW_INVALID_CONTEXT',
                'WORKFLOW_ACTION_FAILED',
                'WORKFLOW_UNKNOWN_VERSION',
              ].includes(error.code)
            ) {
              throw new NonRetryableError(error.message, { cause: error })
            }
            throw error
          }
        },
        listenOptions.subscribe,
      )
    },

    async waitFor(instanceId, until, waitOptions = {}) {
      const timeoutMs = waitOptions.timeoutMs ?? 30_000
      const started = Date.now()
      for (;;) {
        const instance = await engine.get(instanceId)
        if (until(instance as Instance<never>)) return instance as Instance<never>
        const left = timeoutMs - (Date.now() - started)
        if (left <= 0) {
          throw new WorkflowError(
            'WORKFLOW_TIMEOUT',
            `waitFor(${instanceId}) timed out after ${timeoutMs} ms (state ${instance.state}, ${instance.status})`,
            { instanceId },
          )
        }
        await new Promise<void>((resolve) => {
          let list = waiters.get(instanceId)
          if (!list) {
            list = new Set()
            waiters.set(instanceId, list)
          }
          const wake = () => {
            clearTimeout(timer)
            list?.delete(wake)
            if (list?.size === 0) waiters.delete(instanceId)
            resolve()
          }
          const timer = setTimeout(wake, Math.min(left, opts.pollMs))
          list.add(wake)
        })
      }
    },

    stats() {
      return { owned: owned.size, scheduled: heap.size, running: running.size, cached: cache.size }
    },

    close() {
      if (closing) return closing
      closing = (async () => {
        if (pollTimer) clearTimeout(pollTimer)
        if (heartbeatTimer) clearTimeout(heartbeatTimer)
        if (heapTimer !== undefined) clock.clearTimeout(heapTimer)
        heap.clear()
        for (const wake of [...waiters.values()].flatMap((set) => [...set])) wake()
        const deadline = Date.now() + opts.closeTimeout
        while (running.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
        for (const controller of running.values())
          controller.abort(new WorkflowError('WORKFLOW_CLOSED', 'the engine is closing'))
        while (background.size > 0 && Date.now() < deadline + 1000)
          await Promise.race([Promise.allSettled([...background]), new Promise((resolve) => setTimeout(resolve, 100))])
        const bounded = (promises: Promise<unknown>[]) =>
          Promise.race([Promise.allSettled(promises), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
        await bounded([...lanes.values()])
        flushAcks()
        await bounded([...background])
        if (worker) await store.heartbeat(owner, 0).catch(() => undefined)
        await store.close()
      })()
      return closing
    },
  } as Engine

  // Open, resume, run.
  try {
    await store.open()
  } catch (error) {
    throw storeUnavailable(store.kind, 'open', error)
  }
  if (worker) {
    try {
      const started = performance.now()
      await store.heartbeat(owner, clock.now() + opts.leaseMs)
      lastHeartbeat = clock.now()
      const instances = await claimAll(true)
      const ms = performance.now() - started
      if (instances > 0) logger.info({ instances, ms: Math.round(ms) }, 'workflow instances resumed')
      recovered = { instances, ms }
      await pollOutbox()
    } catch (error) {
      await store.close().catch(() => undefined)
      throw storeUnavailable(store.kind, 'resuming instances', error)
    }
    pollLoop()
    heartbeatLoop()
  }
  return engine
}
