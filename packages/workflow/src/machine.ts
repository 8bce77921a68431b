import type { Duration, Jitter } from '@backplane/internal'
import type { z } from 'zod'

/** An event sent to an instance. `id`, when given, makes `send` idempotent: a repeated id is acknowledged and ignored. */
export interface WorkflowEvent {
  readonly type: string
  readonly id?: string | undefined
  readonly [field: string]: unknown
}

/** What an activity failure looks like to `onError` and in the history. */
export interface ActivityErrorInfo {
  readonly name: string
  readonly message: string
  readonly code?: string | undefined
  /** Attempts made before giving up. */
  readonly attempts: number
}

/** The event `invoke.onDone` receives: the activity's committed result. */
export interface DoneEvent {
  readonly type: 'activity.done'
  readonly activity: string
  readonly output: unknown
}

/** The event `invoke.onError` receives once the activity failed for good. */
export interface ErrorEvent {
  readonly type: 'activity.error'
  readonly activity: string
  readonly error: ActivityErrorInfo
}

/** The event an `after` transition receives when its timer fires. */
export interface AfterEvent {
  readonly type: 'after'
  readonly delay: string
}

/** The event `spawn.onDone` receives: the child instance reached a final state. */
export interface ChildDoneEvent {
  readonly type: 'child.done'
  readonly machine: string
  readonly instanceId: string
  /** The child's final state. */
  readonly state: string
  /** The child's context in that state. */
  readonly output: unknown
}

/** The event `spawn.onError` receives: the child failed (its activity failed for good, ...) or was cancelled. */
export interface ChildErrorEvent {
  readonly type: 'child.error'
  readonly machine: string
  readonly instanceId: string
  readonly state: string
  readonly error: { readonly message: string; readonly code?: string | undefined }
}

/** Any event a guard or an action can see. */
export type MachineEvent = WorkflowEvent | DoneEvent | ErrorEvent | AfterEvent | ChildDoneEvent | ChildErrorEvent

/** A message a transition puts in the outbox: published through the broker after the commit, at least once. */
export interface OutboxMessage {
  readonly topic: string
  readonly data: unknown
  readonly key?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** Pure functions only: they may run again after a conflict and must not do I/O (use an activity for that). */
export interface Actions<C, E> {
  /** Returns the context fields to change (merged shallowly into the context). */
  readonly assign?: ((context: C, event: E) => Partial<C>) | undefined
  /** Returns the messages to publish through the outbox, computed after `assign`. */
  readonly emit?: ((context: C, event: E) => OutboxMessage | readonly OutboxMessage[] | undefined) | undefined
}

export interface TransitionConfig<C, E> extends Actions<C, E> {
  /** The state to go to. Without it the transition stays in the state: no exit, no entry, timers and activity untouched. */
  readonly target?: string | undefined
  /** Taken only when this returns true; in a list, the first transition whose guard passes is taken. */
  readonly guard?: ((context: C, event: E) => boolean) | undefined
  readonly description?: string | undefined
}

/** A target state name, a transition, or guarded alternatives tried in order. */
export type Transition<C, E> = string | TransitionConfig<C, E> | readonly (string | TransitionConfig<C, E>)[]

/** Retry policy of an activity: the retry shape every `@backplane` package takes, plus `nonRetryable`. */
export interface RetryPolicy {
  /** Attempts in all, the first included. Default 3. */
  readonly maxAttempts?: number | undefined
  /** Delay before the second attempt. Default "1s". */
  readonly initialDelay?: Duration | undefined
  /** Upper bound of the delay. Default "1m". */
  readonly maxDelay?: Duration | undefined
  /** Each delay is the previous one times this. Default 2. */
  readonly factor?: number | undefined
  /**
   * How to randomize each delay: `'equal'` (default) between half and all of it, `'full'` (or `true`)
   * between 0 and all of it, `'none'` (or `false`) not at all.
   */
  readonly jitter?: Jitter | undefined
  /** Error `name`s or `code`s that are never retried (NonRetryableError never is). */
  readonly nonRetryable?: readonly string[] | undefined
}

export interface InvokeConfig<C> {
  /** Name of an activity given to `createEngine({ activities })`. */
  readonly activity: string
  /** The activity's input, computed when the state is entered and committed with the task. Default: the context. */
  readonly input?: ((context: C) => unknown) | undefined
  /** Taken with the activity's result once it succeeded. Without it the result is committed and the state kept. */
  readonly onDone?: Transition<C, DoneEvent> | undefined
  /** Taken once the activity failed for good. Without it the instance becomes `failed` (see `engine.retry`). */
  readonly onError?: Transition<C, ErrorEvent> | undefined
  /** Overrides the activity's retry policy for this invoke. */
  readonly retry?: RetryPolicy | undefined
  /** Overrides the activity's timeout per attempt for this invoke. */
  readonly timeout?: Duration | undefined
}

export interface SpawnConfig<C> {
  /** The child's machine: a registered machine's id (its newest version) or the machine itself (that version). */
  readonly machine: string | AnyMachine
  /** The child's `start` input, computed when the state is entered. Default: the context. */
  readonly input?: ((context: C) => unknown) | undefined
  /**
   * The child's instance id. Default `<parent id>/<state>/<revision>`, unique per entry of the state.
   * A fixed id that already exists is not started again: the parent waits for that instance.
   */
  readonly id?: ((context: C, parentId: string) => string) | undefined
  /** Taken with the child's final state and context. Without it the state is kept. */
  readonly onDone?: Transition<C, ChildDoneEvent> | undefined
  /** Taken when the child failed or was cancelled. Without it the parent becomes `failed`. */
  readonly onError?: Transition<C, ChildErrorEvent> | undefined
  /**
   * What happens to a child still running when the parent leaves this state or is cancelled:
   * `'cancel'` (default) cancels it, `'abandon'` lets it run on, on its own.
   */
  readonly onParentExit?: 'cancel' | 'abandon' | undefined
}

export interface StateConfig<C> {
  /** `'final'`: the instance is `done` on entering it. */
  readonly type?: 'final' | undefined
  readonly description?: string | undefined
  readonly entry?: Actions<C, MachineEvent> | undefined
  readonly exit?: Actions<C, MachineEvent> | undefined
  /** Event type → transition. */
  readonly on?: Readonly<Record<string, Transition<C, WorkflowEvent>>> | undefined
  /** Runs this activity on entry (at least once, committed as a task first); its result drives `onDone`/`onError`. */
  readonly invoke?: InvokeConfig<C> | undefined
  /**
   * Starts an instance of another machine (or this one) on entry, in the same commit as the
   * transition; its end drives `onDone`/`onError`. Not with `invoke` in the same state.
   */
  readonly spawn?: SpawnConfig<C> | undefined
  /** Delay ("30m", "10s", "500ms", or milliseconds as a string) → transition taken when the timer fires. */
  readonly after?: Readonly<Record<string, Transition<C, AfterEvent>>> | undefined
}

/** What a migration hook receives and returns. */
export interface MigrationSnapshot<C = unknown> {
  readonly state: string
  readonly context: C
}

export interface MachineConfig<S extends z.ZodType, I> {
  /** Machine name; several versions of one id can be registered side by side. */
  readonly id: string
  /** Positive integer; each instance stays on the version it started with. Default 1. */
  readonly version?: number | undefined
  /** zod schema of the context, checked on every commit. */
  readonly context: S
  /** Builds the first context from `start`'s `input`. Default: the input is the context. */
  readonly init?: ((input: I) => z.input<S>) | undefined
  readonly initial: string
  /** Transitions accepted in every state that is not final (a state's own `on` wins). */
  readonly on?: Readonly<Record<string, Transition<z.output<S>, WorkflowEvent>>> | undefined
  readonly states: Readonly<Record<string, StateConfig<z.output<S>>>>
  /**
   * Migration hooks, keyed by the version they migrate from: `{ 1: ({ state, context }) => ({ state, context }) }`
   * moves a version-1 instance to this version (see `engine.migrate`).
   */
  readonly migrations?: Readonly<Record<number, (from: MigrationSnapshot) => MigrationSnapshot<z.input<S>>>> | undefined
  readonly description?: string | undefined
}

const machineBrand = Symbol.for('@backplane/workflow/Machine')

/** A machine definition: pure data and pure functions, validated by `createEngine`. */
export interface Machine<C = unknown, I = unknown> {
  readonly id: string
  readonly version: number
  readonly config: MachineConfig<z.ZodType<C>, I>
  readonly [machineBrand]: true
}

/** Any machine, whatever its context and input types. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds machines of every context type
export type AnyMachine = Machine<any, any>

/**
 * Defines a state machine. Nothing is checked here beyond the basics: `createEngine` validates the
 * whole definition (targets, reachability, activities, delays) and reports every problem at once.
 */
export function defineMachine<S extends z.ZodType, I = z.input<S>>(
  config: MachineConfig<S, I>,
): Machine<z.output<S>, I> {
  if (typeof config !== 'object' || config === null) throw new TypeError('defineMachine: expected a definition object')
  return Object.freeze({
    id: config.id,
    version: config.version ?? 1,
    config: config as unknown as MachineConfig<z.ZodType<z.output<S>>, I>,
    [machineBrand]: true as const,
  })
}

export function isMachine(value: unknown): value is AnyMachine {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[machineBrand] === true
}

/** Normalizes a `Transition` to its list of alternatives. */
export function alternatives<C, E>(transition: Transition<C, E> | undefined): TransitionConfig<C, E>[] {
  if (transition === undefined) return []
  const list = Array.isArray(transition) ? transition : [transition]
  return list.map((t) => (typeof t === 'string' ? { target: t } : (t as TransitionConfig<C, E>)))
}
