/**
 * The pure core: given a definition, an instance and an input, compute the next instance and the
 * effects (new timers and tasks inside the instance, outbox messages, a history row). No I/O, no
 * clock: `now` is an argument. The engine commits the result, then carries the effects out.
 */
import { parseDuration } from '@backplane/internal'
import { WorkflowError } from './errors.js'
import {
  type Actions,
  type ActivityErrorInfo,
  type AnyMachine,
  alternatives,
  type MachineEvent,
  type OutboxMessage,
  type StateConfig,
  type TransitionConfig,
  type WorkflowEvent,
} from './machine.js'
import type { HistoryKind, HistoryRecord, InstanceRecord, OutboxRecord, TaskRecord, TimerRecord } from './store.js'

export type TransitionInput =
  | { readonly kind: 'event'; readonly event: WorkflowEvent }
  | { readonly kind: 'timer'; readonly timerId: string }
  | { readonly kind: 'activity.done'; readonly taskId: string; readonly output: unknown }
  | { readonly kind: 'activity.error'; readonly taskId: string; readonly error: ActivityErrorInfo }

/** A computed step, ready to commit. */
export interface Step {
  readonly type: 'step'
  readonly instance: InstanceRecord
  readonly history: HistoryRecord
  readonly outbox: readonly OutboxRecord[]
  /** The state was (re-)entered: its timers and task replace the old ones. */
  readonly workReplaced: boolean
}

export type StepResult =
  | Step
  /** No transition for this input in this state (or every guard said no, or the instance is not running). */
  | { readonly type: 'not-accepted'; readonly reason: string }
  /** The timer or task is no longer pending: it was cancelled by an earlier transition. */
  | { readonly type: 'stale' }
  /** A guard, assign or emit threw, or the new context fails the schema: nothing to commit. */
  | { readonly type: 'error'; readonly error: WorkflowError }

type AnyState = StateConfig<unknown>
type AnyTransition = TransitionConfig<unknown, MachineEvent>

export function stateOf(machine: AnyMachine, name: string): AnyState | undefined {
  return Object.hasOwn(machine.config.states, name) ? (machine.config.states[name] as AnyState) : undefined
}

class StepError extends Error {
  constructor(readonly error: WorkflowError) {
    super(error.message)
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

function call<T>(instanceId: string, what: string, fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    throw new StepError(
      new WorkflowError('WORKFLOW_ACTION_FAILED', `${what} threw: ${describeError(error)}`, {
        cause: error,
        instanceId,
      }),
    )
  }
}

/** Runs an assign then an emit, returning the new context and appending the messages. */
function runActions(
  instanceId: string,
  what: string,
  actions: Actions<unknown, MachineEvent> | undefined,
  context: unknown,
  event: MachineEvent,
  messages: OutboxMessage[],
): unknown {
  if (!actions) return context
  let next = context
  if (actions.assign) {
    const assign = actions.assign
    const patch = call(instanceId, `${what} assign`, () => assign(context, event))
    if (patch !== undefined && patch !== null) {
      if (typeof patch !== 'object' || Array.isArray(patch)) {
        throw new StepError(
          new WorkflowError(
            'WORKFLOW_ACTION_FAILED',
            `${what} assign returned ${typeof patch}: expected an object of context fields`,
            {
              instanceId,
            },
          ),
        )
      }
      next = { ...(context as object), ...(patch as object) }
    }
  }
  if (actions.emit) {
    const emit = actions.emit
    const out = call(instanceId, `${what} emit`, () => emit(next, event))
    if (out !== undefined) {
      const list = (Array.isArray(out) ? out : [out]) as OutboxMessage[]
      for (const message of list) {
        if (typeof message?.topic !== 'string' || message.topic === '') {
          throw new StepError(
            new WorkflowError(
              'WORKFLOW_ACTION_FAILED',
              `${what} emit returned a message without a topic: expected { topic, data, key?, headers? }`,
              {
                instanceId,
              },
            ),
          )
        }
        messages.push(message)
      }
    }
  }
  return next
}

function checkContext(machine: AnyMachine, instanceId: string, context: unknown): unknown {
  const result = machine.config.context.safeParse(context)
  if (result.success) return result.data
  const details = result.error.issues.map(
    (issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(context)'}: ${issue.message}`,
  )
  throw new StepError(
    new WorkflowError(
      'WORKFLOW_INVALID_CONTEXT',
      `context of ${instanceId} (${machine.id} v${machine.version}) fails its schema: ${details.join('; ')}`,
      { details, instanceId },
    ),
  )
}

/** Timers and task of a state being entered at revision `revision`. */
export function workOf(
  machine: AnyMachine,
  instanceId: string,
  stateName: string,
  context: unknown,
  revision: number,
  now: number,
): { timers: TimerRecord[]; tasks: TaskRecord[] } {
  const state = stateOf(machine, stateName)
  const timers: TimerRecord[] = []
  const tasks: TaskRecord[] = []
  if (!state || state.type === 'final') return { timers, tasks }
  if (state.after) {
    for (const delay of Object.keys(state.after)) {
      timers.push({ id: `${revision}:${delay}`, delay, deadline: now + (parseDuration(delay) ?? 0) })
    }
  }
  if (state.invoke) {
    const invoke = state.invoke
    const input = invoke.input
      ? call(instanceId, `state ${stateName} invoke input`, () => (invoke.input as (c: unknown) => unknown)(context))
      : context
    tasks.push({
      id: String(revision),
      activity: invoke.activity,
      input: input === undefined ? null : input,
      key: `${instanceId}/${stateName}/${revision}`,
      attempt: 1,
      runAt: now,
    })
  }
  return { timers, tasks }
}

function toOutbox(instanceId: string, revision: number, messages: OutboxMessage[], now: number): OutboxRecord[] {
  return messages.map((message, index) => ({
    id: `${instanceId}/${revision}/${index + 1}`,
    instanceId,
    topic: message.topic,
    data: message.data === undefined ? null : message.data,
    key: message.key,
    headers: message.headers,
    createdAt: now,
  }))
}

/** Creates a new instance in the machine's initial state (running its entry actions). */
export function initialStep(machine: AnyMachine, id: string, input: unknown, now: number): StepResult {
  try {
    const config = machine.config
    const init = config.init
    const seed = init ? call(id, 'init', () => init(input)) : input
    let context = checkContext(machine, id, seed)
    const messages: OutboxMessage[] = []
    const event: WorkflowEvent = { type: 'start' }
    const initial = stateOf(machine, config.initial)
    context = runActions(id, `state ${config.initial} entry`, initial?.entry, context, event, messages)
    context = checkContext(machine, id, context)
    const revision = 1
    const work = workOf(machine, id, config.initial, context, revision, now)
    const final = initial?.type === 'final'
    const instance: InstanceRecord = {
      id,
      machine: machine.id,
      version: machine.version,
      state: config.initial,
      status: final ? 'done' : 'running',
      context,
      revision,
      createdAt: now,
      updatedAt: now,
      timers: work.timers,
      tasks: work.tasks,
    }
    return {
      type: 'step',
      instance,
      history: {
        instanceId: id,
        seq: revision,
        at: now,
        kind: 'start',
        event: { type: 'start', input: input ?? null },
        from: null,
        to: config.initial,
      },
      outbox: toOutbox(id, revision, messages, now),
      workReplaced: true,
    }
  } catch (error) {
    if (error instanceof StepError) return { type: 'error', error: error.error }
    throw error
  }
}

/** The transitions an event type can take in a state: the state's own, else the machine-wide ones. */
export function eventTransitions(machine: AnyMachine, stateName: string, type: string): AnyTransition[] {
  const state = stateOf(machine, stateName)
  if (!state || state.type === 'final') return []
  const own = state.on && Object.hasOwn(state.on, type) ? state.on[type] : undefined
  if (own !== undefined) return alternatives(own) as AnyTransition[]
  const global = machine.config.on && Object.hasOwn(machine.config.on, type) ? machine.config.on[type] : undefined
  return alternatives(global) as AnyTransition[]
}

/** Computes the step an input causes. */
export function transition(
  machine: AnyMachine,
  instance: InstanceRecord,
  input: TransitionInput,
  now: number,
): StepResult {
  try {
    return computeTransition(machine, instance, input, now)
  } catch (error) {
    if (error instanceof StepError) return { type: 'error', error: error.error }
    throw error
  }
}

function computeTransition(
  machine: AnyMachine,
  instance: InstanceRecord,
  input: TransitionInput,
  now: number,
): StepResult {
  const state = stateOf(machine, instance.state)
  let candidates: AnyTransition[]
  let event: MachineEvent
  let kind: HistoryKind
  let consumedTimer: string | undefined
  let consumedTask: string | undefined

  if (input.kind === 'event') {
    if (instance.status !== 'running') return { type: 'not-accepted', reason: `the instance is ${instance.status}` }
    event = input.event
    kind = 'event'
    candidates = eventTransitions(machine, instance.state, event.type)
    if (candidates.length === 0)
      return { type: 'not-accepted', reason: `state ${instance.state} does not accept ${event.type}` }
  } else if (input.kind === 'timer') {
    const timer = instance.timers.find((t) => t.id === input.timerId)
    if (!timer || instance.status !== 'running') return { type: 'stale' }
    consumedTimer = timer.id
    event = { type: 'after', delay: timer.delay }
    kind = 'timer'
    const after = state?.after
    candidates = after && Object.hasOwn(after, timer.delay) ? (alternatives(after[timer.delay]) as AnyTransition[]) : []
  } else {
    const task = instance.tasks.find((t) => t.id === input.taskId)
    if (!task || instance.status !== 'running') return { type: 'stale' }
    consumedTask = task.id
    const invoke = state?.invoke
    if (input.kind === 'activity.done') {
      event = {
        type: 'activity.done',
        activity: task.activity,
        output: input.output === undefined ? null : input.output,
      }
      kind = 'activity.done'
      candidates = alternatives(invoke?.onDone) as AnyTransition[]
    } else {
      event = { type: 'activity.error', activity: task.activity, error: input.error }
      kind = 'activity.error'
      candidates = alternatives(invoke?.onError) as AnyTransition[]
      if (candidates.length === 0) {
        return failStep(
          instance,
          {
            message: `activity ${task.activity} failed: ${input.error.message}`,
            code: input.error.code,
            activity: task.activity,
            at: now,
          },
          event,
          now,
          { keepTask: true },
        )
      }
    }
  }

  let chosen: AnyTransition | undefined
  for (const candidate of candidates) {
    const guard = candidate.guard
    if (
      !guard ||
      call(instance.id, `guard of ${event.type} in ${instance.state}`, () => guard(instance.context, event))
    ) {
      chosen = candidate
      break
    }
  }

  const revision = instance.revision + 1
  if (!chosen) {
    if (input.kind === 'event')
      return { type: 'not-accepted', reason: `no guard of ${event.type} in ${instance.state} passed` }
    // A timer or a result with no transition to take: it is consumed, the state stays.
    return {
      type: 'step',
      instance: {
        ...instance,
        revision,
        updatedAt: now,
        timers: consumedTimer ? instance.timers.filter((t) => t.id !== consumedTimer) : instance.timers,
        tasks: consumedTask ? instance.tasks.filter((t) => t.id !== consumedTask) : instance.tasks,
      },
      history: {
        instanceId: instance.id,
        seq: revision,
        at: now,
        kind,
        event,
        from: instance.state,
        to: instance.state,
      },
      outbox: [],
      workReplaced: false,
    }
  }

  const messages: OutboxMessage[] = []
  const target = chosen.target
  let context = instance.context
  if (target !== undefined)
    context = runActions(instance.id, `state ${instance.state} exit`, state?.exit, context, event, messages)
  context = runActions(instance.id, `transition ${event.type} in ${instance.state}`, chosen, context, event, messages)
  const targetState = target === undefined ? state : stateOf(machine, target)
  if (target !== undefined)
    context = runActions(instance.id, `state ${target} entry`, targetState?.entry, context, event, messages)
  context = checkContext(machine, instance.id, context)

  let timers = instance.timers
  let tasks = instance.tasks
  let status: InstanceRecord['status'] = instance.status
  if (target !== undefined) {
    const work = workOf(machine, instance.id, target, context, revision, now)
    timers = work.timers
    tasks = work.tasks
    if (targetState?.type === 'final') status = 'done'
  } else {
    if (consumedTimer) timers = timers.filter((t) => t.id !== consumedTimer)
    if (consumedTask) tasks = tasks.filter((t) => t.id !== consumedTask)
  }
  const to = target ?? instance.state
  return {
    type: 'step',
    instance: { ...instance, state: to, status, context, revision, updatedAt: now, timers, tasks, failure: undefined },
    history: { instanceId: instance.id, seq: revision, at: now, kind, event, from: instance.state, to },
    outbox: toOutbox(instance.id, revision, messages, now),
    workReplaced: target !== undefined,
  }
}

function failStep(
  instance: InstanceRecord,
  failure: NonNullable<InstanceRecord['failure']>,
  event: unknown,
  now: number,
  _options: { keepTask: boolean },
): Step {
  const revision = instance.revision + 1
  return {
    type: 'step',
    instance: { ...instance, status: 'failed', revision, updatedAt: now, failure },
    history: {
      instanceId: instance.id,
      seq: revision,
      at: now,
      kind: 'failed',
      event,
      from: instance.state,
      to: instance.state,
    },
    outbox: [],
    workReplaced: false,
  }
}

/**
 * Marks an instance `failed` (its timers and tasks are kept but no longer run): an activity failed
 * with no `onError`, or applying a timer or an activity result threw or broke the context schema.
 */
export function failInstance(
  instance: InstanceRecord,
  failure: NonNullable<InstanceRecord['failure']>,
  event: unknown,
  now: number,
): Step {
  return failStep(instance, failure, event, now, { keepTask: true })
}

/** Records an event the state does not accept as ignored (the `unhandledEvents: 'ignore'` option). */
export function ignoreStep(instance: InstanceRecord, event: WorkflowEvent, reason: string, now: number): Step {
  const revision = instance.revision + 1
  return {
    type: 'step',
    instance: { ...instance, revision, updatedAt: now },
    history: {
      instanceId: instance.id,
      seq: revision,
      at: now,
      kind: 'ignored',
      event: { ...event, reason },
      from: instance.state,
      to: instance.state,
    },
    outbox: [],
    workReplaced: false,
  }
}

/**
 * Puts a failed attempt's task back with its next attempt number and due time. Not a transition
 * (the state stays), but a history row all the same: every revision has one, and a failed
 * attempt stays on record after the call succeeds or fails for good.
 */
export function rescheduleTask(
  instance: InstanceRecord,
  taskId: string,
  runAt: number,
  error: ActivityErrorInfo,
  now: number,
): Step {
  const revision = instance.revision + 1
  const task = instance.tasks.find((t) => t.id === taskId)
  return {
    type: 'step',
    instance: {
      ...instance,
      revision,
      updatedAt: now,
      tasks: instance.tasks.map((t) =>
        t.id === taskId ? { ...t, attempt: t.attempt + 1, runAt, lastError: error } : t,
      ),
    },
    history: {
      instanceId: instance.id,
      seq: revision,
      at: now,
      kind: 'activity.attempt',
      event: { type: 'activity.attempt', activity: task?.activity, attempt: task?.attempt, error, retryAt: runAt },
      from: instance.state,
      to: instance.state,
    },
    outbox: [],
    workReplaced: false,
  }
}

/** Sets a failed instance running again: its tasks get a fresh attempt budget (same idempotency keys), due now. */
export function retryStep(instance: InstanceRecord, now: number): Step {
  const revision = instance.revision + 1
  return {
    type: 'step',
    instance: {
      ...instance,
      status: 'running',
      revision,
      updatedAt: now,
      failure: undefined,
      tasks: instance.tasks.map((task) => ({ ...task, attempt: 1, runAt: now })),
    },
    history: {
      instanceId: instance.id,
      seq: revision,
      at: now,
      kind: 'retry',
      event: { type: 'retry', failure: instance.failure ?? null },
      from: instance.state,
      to: instance.state,
    },
    outbox: [],
    workReplaced: true,
  }
}

/**
 * Moves an instance from `from` to `to` (a later version of the same machine) through the `migrations`
 * hooks of every version in between. The pending task is kept when the new state invokes the same
 * activity; timers are kept when the new state has the same delay; what the new state needs and
 * lacks is armed now. Entry actions are not run again.
 */
export function migrateStep(
  versions: ReadonlyMap<number, AnyMachine>,
  instance: InstanceRecord,
  toVersion: number,
  now: number,
): StepResult {
  const target = versions.get(toVersion)
  if (!target) {
    return {
      type: 'error',
      error: new WorkflowError('WORKFLOW_UNKNOWN_VERSION', `${instance.machine} has no version ${toVersion}`, {
        instanceId: instance.id,
      }),
    }
  }
  try {
    let snapshot: { state: string; context: unknown } = { state: instance.state, context: instance.context }
    let current = instance.version
    while (current < toVersion) {
      // The furthest version up to `toVersion` with a hook from `current`; else one step without a hook.
      let next = current + 1
      let hook: ((from: { state: string; context: unknown }) => { state: string; context: unknown }) | undefined
      for (let version = toVersion; version > current; version--) {
        const candidate = versions.get(version)?.config.migrations?.[current]
        if (candidate) {
          next = version
          hook = candidate as typeof hook
          break
        }
      }
      const machine = versions.get(next)
      if (!machine) {
        current = next
        continue
      }
      if (hook) {
        const from = snapshot
        const apply = hook
        snapshot = call(instance.id, `migrations[${current}] hook of v${next}`, () => apply(from))
        if (typeof snapshot?.state !== 'string' || !stateOf(machine, snapshot.state)) {
          throw new StepError(
            new WorkflowError(
              'WORKFLOW_MIGRATION_FAILED',
              `the migrations[${current}] hook of ${instance.machine} v${next} returned state ${JSON.stringify(snapshot?.state)}, which v${next} does not have`,
              { instanceId: instance.id },
            ),
          )
        }
      } else if (!stateOf(machine, snapshot.state)) {
        throw new StepError(
          new WorkflowError(
            'WORKFLOW_MIGRATION_FAILED',
            `${instance.machine} v${next} has no state ${snapshot.state} and no migrations[${current}] hook to move instances to it`,
            { instanceId: instance.id },
          ),
        )
      }
      current = next
    }
    const context = checkContext(target, instance.id, snapshot.context)
    const revision = instance.revision + 1
    const state = stateOf(target, snapshot.state)
    const wanted = workOf(target, instance.id, snapshot.state, context, revision, now)
    const timers = wanted.timers.map(
      (timer) => instance.timers.find((old) => old.delay === timer.delay && snapshot.state === instance.state) ?? timer,
    )
    const tasks = wanted.tasks.map(
      (task) =>
        instance.tasks.find((old) => old.activity === task.activity && snapshot.state === instance.state) ?? task,
    )
    return {
      type: 'step',
      instance: {
        ...instance,
        version: toVersion,
        state: snapshot.state,
        context,
        status: (state?.type === 'final' ? 'done' : instance.status) as InstanceRecord['status'],
        revision,
        updatedAt: now,
        timers,
        tasks,
      },
      history: {
        instanceId: instance.id,
        seq: revision,
        at: now,
        kind: 'migrate',
        event: { type: 'migrate', from: instance.version, to: toVersion },
        from: instance.state,
        to: snapshot.state,
      },
      outbox: [],
      workReplaced: true,
    }
  } catch (error) {
    if (error instanceof StepError) return { type: 'error', error: error.error }
    throw error
  }
}
