/**
 * The pure core: given a definition, an instance and an input, compute the next instance and the
 * effects (new timers and tasks inside the instance, outbox messages, a history row). No I/O, no
 * clock: `now` is an argument. The engine commits the result, then carries the effects out.
 */
import { parseDuration } from '@backplane/internal'
import { cancelMessages, spawnMessages } from './child-messages.js'
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
  | {
      readonly kind: 'child.done'
      readonly taskId: string
      readonly childId: string
      readonly state: string
      readonly output: unknown
    }
  | {
      readonly kind: 'child.error'
      readonly taskId: string
      readonly childId: string
      readonly state: string
      readonly error: { readonly message: string; readonly code?: string | undefined }
    }

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

export class StepError extends Error {
  constructor(readonly error: WorkflowError) {
    super(error.message)
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

export function call<T>(instanceId: string, what: string, fn: () => T): T {
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

export function checkContext(machine: AnyMachine, instanceId: string, context: unknown): unknown {
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
  if (state.spawn) {
    const spawn = state.spawn
    const input = spawn.input
      ? call(instanceId, `state ${stateName} spawn input`, () => (spawn.input as (c: unknown) => unknown)(context))
      : context
    const id = spawn.id
      ? call(instanceId, `state ${stateName} spawn id`, () =>
          (spawn.id as (c: unknown, parentId: string) => string)(context, instanceId),
        )
      : `${instanceId}/${stateName}/${revision}`
    if (typeof id !== 'string' || id.length === 0 || id.length > 200)
      throw new StepError(
        new WorkflowError(
          'WORKFLOW_INVALID_DEFINITION',
          `state ${stateName} spawn: the child id must be a string of 1 to 200 characters, got ${JSON.stringify(id)?.slice(0, 220)}`,
          { instanceId },
        ),
      )
    const machineRef = spawn.machine
    const child = {
      id,
      machine: typeof machineRef === 'string' ? machineRef : machineRef.id,
      version: typeof machineRef === 'string' ? undefined : machineRef.version,
      onParentExit: spawn.onParentExit ?? 'cancel',
    }
    tasks.push({
      id: String(revision),
      activity: `spawn ${child.machine}`,
      input: input === undefined ? null : input,
      key: `${instanceId}/${stateName}/${revision}`,
      attempt: 1,
      // Nothing runs for it: the child's end is what moves it. Due never, so no scheduler wakes for it.
      runAt: Number.MAX_SAFE_INTEGER,
      child,
    })
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

export function toOutbox(instanceId: string, revision: number, messages: OutboxMessage[], now: number): OutboxRecord[] {
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

/**
 * A step that keeps the state (a failure, an ignored event, an attempt put back, a cancel, a retry):
 * the next revision with `change` applied, its history row and its messages.
 */
export function stayStep(
  instance: InstanceRecord,
  now: number,
  kind: HistoryKind,
  event: unknown,
  change: Partial<InstanceRecord> = {},
  messages: OutboxMessage[] = [],
  workReplaced = false,
): Step {
  const revision = instance.revision + 1
  return {
    type: 'step',
    instance: { ...instance, ...change, revision, updatedAt: now },
    history: { instanceId: instance.id, seq: revision, at: now, kind, event, from: instance.state, to: instance.state },
    outbox: toOutbox(instance.id, revision, messages, now),
    workReplaced,
  }
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
    messages.push(...spawnMessages(id, work.tasks))
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
    const spawn = state?.spawn
    if (input.kind === 'child.done' || input.kind === 'child.error') {
      // Not the child this task waits for (an earlier one, replaced by a retry): nothing to do.
      if (task.child?.id !== input.childId) return { type: 'stale' }
      const about = { machine: task.child.machine, instanceId: task.child.id, state: input.state }
      if (input.kind === 'child.done') {
        event = { type: 'child.done', ...about, output: input.output === undefined ? null : input.output }
        kind = 'child.done'
        candidates = alternatives(spawn?.onDone) as AnyTransition[]
      } else {
        event = { type: 'child.error', ...about, error: input.error }
        kind = 'child.error'
        candidates = alternatives(spawn?.onError) as AnyTransition[]
        if (candidates.length === 0) {
          return failStep(
            instance,
            {
              message: `child ${task.child.id} (${task.child.machine}) failed: ${input.error.message}`,
              code: input.error.code,
              at: now,
            },
            event,
            now,
          )
        }
      }
    } else if (input.kind === 'activity.done') {
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
    return stayStep(instance, now, kind, event, {
      timers: consumedTimer ? instance.timers.filter((t) => t.id !== consumedTimer) : instance.timers,
      tasks: consumedTask ? instance.tasks.filter((t) => t.id !== consumedTask) : instance.tasks,
    })
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
    const left = instance.tasks.filter((t) => t.id !== consumedTask)
    messages.push(...cancelMessages(left, `its parent ${instance.id} left state ${instance.state}`))
    messages.push(...spawnMessages(instance.id, work.tasks))
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
): Step {
  return stayStep(instance, now, 'failed', event, { status: 'failed', failure })
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
  return failStep(instance, failure, event, now)
}
