/**
 * The engine's public types: what `createEngine` returns and what its methods, activities, events
 * and broker see. Kept apart from the engine's code so options.ts and the engine's parts can import
 * them without importing the engine.
 */
import type { Duration } from '@backplane/internal'
import type { EventEmitter } from 'eventemitter3'
import type { ActivityErrorInfo, Machine, RetryPolicy, WorkflowEvent } from './machine.js'
import type { Schedule, ScheduleOptions } from './schedule-spec.js'
import type { HistoryKind, InstanceStatus, ListFilter } from './store.js'

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

/** One page of `list`: `next` is the `after` of the next page, null on the last one. */
export interface InstancePage<C = unknown> {
  readonly instances: Instance<C>[]
  readonly next: string | null
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
  /**
   * Flow control across every engine on the store: attempts over a limit wait (durably, in the
   * order they became due) without spending an attempt. Give every engine the same limits.
   */
  readonly limits?: ActivityLimits | undefined
  /**
   * A circuit breaker for this activity type, shared by every engine on the store: after `failures`
   * failed attempts in a row, attempts wait (nothing is spent) for `cooldown`, then one probe runs.
   */
  readonly breaker?: BreakerOptions | undefined
}

/** At most `limit` attempts start in any window of `per`. */
export interface RateLimit {
  readonly limit: number
  readonly per: Duration
}

export interface ActivityLimits {
  /** Attempts of this activity running at once. */
  readonly concurrency?: number | undefined
  readonly rate?: RateLimit | undefined
  /** The key of an attempt (a function of its input): `perKey` limits apply to each key alone. */
  // biome-ignore lint/suspicious/noExplicitAny: the activity's input, whatever its invoke computes
  readonly key?: ((input: any) => string) | undefined
  readonly perKey?: { readonly concurrency?: number | undefined; readonly rate?: RateLimit | undefined } | undefined
}

export interface BreakerOptions {
  /** Failed attempts in a row (errors marked non-retryable do not count) that open the breaker. */
  readonly failures: number
  /** How long it stays open before one probe attempt runs (half-open). Default "30s". */
  readonly cooldown?: Duration | undefined
}

/** Where an activity type stands: paused by hand, and its circuit breaker. */
export interface ActivityState {
  readonly activity: string
  /** Paused by hand (`pauseActivity`): no attempt starts until `resumeActivity`. */
  readonly paused: boolean
  /** `open`: attempts wait until `openUntil`; `half-open`: one probe attempt decides. */
  readonly breaker: 'closed' | 'open' | 'half-open'
  /** Failed attempts in a row. */
  readonly failures: number
  readonly openUntil: Date | null
  /** Attempts of it waiting in this engine (for a limit, the breaker or a pause). */
  readonly waiting: number
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
  /** An activity type's breaker opened (attempts wait until `openUntil`) or closed again, as this engine saw it. */
  breaker: (event: { activity: string; state: 'open' | 'closed'; failures: number; openUntil: Date | null }) => void
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
  /** Activity attempts due but waiting for a limit, a breaker or a pause. */
  readonly waiting: number
  readonly cached: number
}

/** Options of `engine.waitFor`. */
export interface WaitForOptions {
  /** Give up with WORKFLOW_TIMEOUT after this long. Default "30s". */
  readonly timeout?: Duration | undefined
  /** @deprecated use `timeout` (same meaning, also takes a duration string). */
  readonly timeoutMs?: number | undefined
}

export interface Engine {
  /** Starts an instance: commits its initial state (running entry actions) and arms its timers and activity. */
  start<C, I>(machine: Machine<C, I>, options?: StartOptions<I>): Promise<Instance<C>>
  start<C = unknown>(machine: string, options?: StartOptions<unknown>): Promise<Instance<C>>
  /** Sends an event: committed before this resolves; a repeated `event.id` resolves `duplicate` without effect. */
  send<C = unknown>(instanceId: string, event: WorkflowEvent, options?: SendOptions): Promise<SendResult<C>>
  get<C = unknown>(instanceId: string): Promise<Instance<C>>
  /**
   * Instances in id order, `limit` (default 100, at most 100,000) at a time: pass `next` as `after`
   * for the next page; `next` is null on the last one.
   */
  list<C = unknown>(filter?: ListFilter): Promise<InstancePage<C>>
  history(instanceId: string): Promise<HistoryEntry[]>
  /**
   * Cancels a running or failed instance: it becomes `cancelled` (final) in its current state, its
   * timers and activity no longer run, and children it spawned are cancelled unless their spawn
   * says `onParentExit: 'abandon'`. A `done` or `cancelled` instance is returned as it is.
   */
  cancel<C = unknown>(instanceId: string, options?: { reason?: string | undefined }): Promise<Instance<C>>
  /** Sets a `failed` instance running again: its activity gets a fresh attempt budget (same idempotency key). */
  retry<C = unknown>(instanceId: string): Promise<Instance<C>>
  /** Moves an instance to another registered version of its machine through the `migrations` hooks. */
  migrate<C = unknown>(instanceId: string, options?: { to?: number | undefined }): Promise<Instance<C>>
  /** Turns messages of a broker topic into events (message id = event id, so redeliveries are ignored). */
  listen(topic: string, map: ListenMap, options?: ListenOptions): Promise<{ close(): Promise<void> }>
  /** Resolves with the instance once `until` holds (checked on every transition and every `pollInterval`). */
  waitFor<C = unknown>(
    instanceId: string,
    until: (instance: Instance<C>) => boolean,
    options?: WaitForOptions,
  ): Promise<Instance<C>>
  /**
   * Creates or replaces (keeping its tick history) a schedule that starts an instance of `machine`
   * on every tick, under the id `<id>@<tick ISO time>`: once per tick across every engine on the store.
   */
  schedule<I = unknown>(id: string, options: ScheduleOptions<I>): Promise<Schedule>
  /** Removes a schedule (the instances it started stay); false when there was none. */
  unschedule(id: string): Promise<boolean>
  /** Every schedule, by id, with its last and next tick. */
  schedules(): Promise<Schedule[]>
  /** Stops a schedule's ticks until `resumeSchedule`; ticks passing meanwhile are not started. */
  pauseSchedule(id: string): Promise<Schedule>
  resumeSchedule(id: string): Promise<Schedule>
  /**
   * Stops starting attempts of an activity type, in every engine on the store (others see it within
   * their `pollInterval`); running attempts finish. Attempts wait without spending their budget.
   */
  pauseActivity(activity: string): Promise<ActivityState>
  /** Lets a paused activity type run again, and closes its breaker if it is open. */
  resumeActivity(activity: string): Promise<ActivityState>
  /** The activity types registered here or recorded in the store (paused, breaker), by name. */
  activities(): Promise<ActivityState[]>
  stats(): EngineStats
  readonly events: EventEmitter<EngineEvents>
  /** This engine's lease owner id. */
  readonly owner: string
  /** What `createEngine` resumed: instances claimed with their timers re-armed and tasks queued, and how long it took. */
  readonly recovered: { readonly instances: number; readonly ms: number }
  /** Stops timers and polling, waits for running activities (up to `closeTimeout`), gives up leases, closes the store. */
  close(): Promise<void>
}
