import type { FlowStore } from './flow-store.js'
import type { ActivityErrorInfo, OutboxMessage } from './machine.js'
import type { ScheduleStore } from './schedule-store.js'

/** `done` and `cancelled` are final; a `failed` instance can be set running again (`retry`). */
export const INSTANCE_STATUSES = ['running', 'done', 'failed', 'cancelled'] as const
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number]

/** A timer armed on entering a state: fires at its absolute `deadline` (ms since the epoch), restarts included. */
export interface TimerRecord {
  readonly id: string
  /** The `after` key that armed it ("30m"). */
  readonly delay: string
  readonly deadline: number
  /**
   * The W3C trace context (`traceparent`, `tracestate`, `baggage`: what the registered propagator
   * writes) of the transition that armed it; its transition continues that trace. Absent when none was active.
   */
  readonly trace?: Readonly<Record<string, string>> | undefined
}

/** A pending activity call, committed with the transition that entered its state. */
export interface TaskRecord {
  readonly id: string
  readonly activity: string
  readonly input: unknown
  /** Stable across every attempt and every restart of this call: hand it to the service you call. */
  readonly key: string
  /** The attempt to run next (1 for the first). */
  readonly attempt: number
  /** When to run it (ms since the epoch): now, or after a backoff. */
  readonly runAt: number
  readonly lastError?: ActivityErrorInfo | undefined
  /** Set for a `spawn`: the task waits for this child instance instead of running an activity. */
  readonly child?:
    | {
        readonly id: string
        readonly machine: string
        /** Absent: the newest version registered where the child starts. */
        readonly version?: number | undefined
        readonly onParentExit: 'cancel' | 'abandon'
      }
    | undefined
  /**
   * The W3C trace context of the transition that committed this call: every attempt runs in that
   * trace, restarts included. Absent when none was active.
   */
  readonly trace?: Readonly<Record<string, string>> | undefined
}

/** Why an instance is `failed`. */
export interface FailureRecord {
  readonly message: string
  readonly code?: string | undefined
  readonly activity?: string | undefined
  readonly at: number
}

/** One instance as stored: its snapshot (state, context) and its pending work (timers, tasks). */
export interface InstanceRecord {
  readonly id: string
  readonly machine: string
  readonly version: number
  readonly state: string
  readonly status: InstanceStatus
  readonly context: unknown
  /** Increases by one on every commit: the optimistic-concurrency token. */
  readonly revision: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly timers: readonly TimerRecord[]
  readonly tasks: readonly TaskRecord[]
  readonly failure?: FailureRecord | undefined
  /** Set on an instance a `spawn` started: the parent and its task waiting for this one's end. */
  readonly parent?: { readonly id: string; readonly taskId: string } | undefined
}

export type HistoryKind =
  | 'start'
  | 'event'
  | 'timer'
  | 'activity.done'
  | 'activity.error'
  /** An activity attempt failed and will run again (`event.retryAt`); the state stays. */
  | 'activity.attempt'
  /** A spawned child ended: done (`child.done`), or failed or cancelled (`child.error`). */
  | 'child.done'
  | 'child.error'
  | 'cancelled'
  | 'ignored'
  | 'failed'
  | 'retry'
  | 'migrate'

/** One committed transition. */
export interface HistoryRecord {
  readonly instanceId: string
  /** The instance revision this transition produced (unique per instance). */
  readonly seq: number
  readonly at: number
  readonly kind: HistoryKind
  /** The event (JSON): a sent event, `{ type: 'after', delay }`, `{ type: 'activity.done', activity, output }`, … */
  readonly event: unknown
  readonly from: string | null
  readonly to: string
}

/** A message waiting in the outbox. `id` is stable: consumers de-duplicate on it. */
export interface OutboxRecord extends OutboxMessage {
  readonly id: string
  readonly instanceId: string
  readonly createdAt: number
}

/** Everything one transition changes, written in one store transaction or not at all. */
export interface Commit {
  /** The new row. `instance.revision` must be `expectedRevision + 1`. */
  readonly instance: InstanceRecord
  /** 0 to create the instance (fails with `exists` if the id is taken), else the revision it was computed from. */
  readonly expectedRevision: number
  /** `string`/`null`: set the owner column; `undefined`: leave it. */
  readonly owner?: string | null | undefined
  readonly history: readonly HistoryRecord[]
  /** Event id to record as processed (fails with `duplicate` if already recorded for this instance). */
  readonly eventId?: string | undefined
  readonly outbox: readonly OutboxRecord[]
  /** Outbox rows are not handed to other processes before this time (the committer publishes them first). */
  readonly outboxHoldUntil?: number | undefined
}

export type CommitResult =
  | { readonly status: 'committed' }
  | { readonly status: 'conflict' }
  | { readonly status: 'duplicate' }
  | { readonly status: 'exists' }

export interface ListFilter {
  readonly machine?: string | undefined
  readonly version?: number | undefined
  readonly state?: string | undefined
  readonly status?: InstanceStatus | undefined
  /** At most this many, ordered by id. Default 100. */
  readonly limit?: number | undefined
  /** Only ids greater than this (paging). */
  readonly after?: string | undefined
}

/** What `countInstances` narrows by: the `list` filter without paging. */
export type CountFilter = Omit<ListFilter, 'limit' | 'after'>

/** How many instances of one machine version are in one state with one status. */
export interface InstanceCount {
  readonly machine: string
  readonly version: number
  readonly state: string
  readonly status: InstanceStatus
  readonly count: number
}

export interface ClaimOptions {
  readonly owner: string
  readonly now: number
  /** Claim instances whose earliest timer or task is due before this time. */
  readonly dueBefore: number
  readonly limit: number
  /** Also claim instances this owner holds (after a restart with the same owner, or a lost lease). */
  readonly includeOwn: boolean
  /** Claim whatever the owner (single-driver stores at start: the previous process is gone). */
  readonly takeover: boolean
  /**
   * Page by id: only ids greater than this, returned in id order (bytewise) instead of due order.
   * Used with `includeOwn`/`takeover`, which can return rows this owner already holds.
   */
  readonly afterId?: string | undefined
}

export interface OutboxClaimOptions {
  readonly now: number
  readonly limit: number
  /** Claimed rows are hidden from other claims until this time. */
  readonly holdUntil: number
}

/**
 * Where instances live. Every store passes the same conformance suite. Methods reject with a
 * `WorkflowError` (`WORKFLOW_STORE_UNAVAILABLE` when the database cannot be reached).
 */
export interface Store {
  /** For logs and errors: "memory", "sqlite", "postgres". */
  readonly kind: string
  /** True when several engine processes may drive instances of this store at once (leases are then honoured). */
  readonly shared: boolean
  /** Connects and creates the tables when missing. Idempotent; a closed store can be opened again. */
  open(): Promise<void>
  close(): Promise<void>
  /** Applies one transition atomically: instance row, history, processed event id, outbox. */
  commit(commit: Commit): Promise<CommitResult>
  load(id: string): Promise<InstanceRecord | undefined>
  list(filter: ListFilter): Promise<InstanceRecord[]>
  /**
   * Optional: the instances matching `filter`, counted per machine, version, state and status (one
   * row per group that has any, in no particular order). Readers page through `list` without it.
   */
  countInstances?(filter: CountFilter): Promise<InstanceCount[]>
  history(id: string): Promise<HistoryRecord[]>
  /** Whether this event id was processed for this instance. */
  hasEvent(instanceId: string, eventId: string): Promise<boolean>
  /**
   * Takes ownership of running instances with work due before `dueBefore` whose owner is none,
   * or whose owner's lease expired (or any owner with `takeover`), and returns them.
   */
  claim(options: ClaimOptions): Promise<InstanceRecord[]>
  /** Keeps `owner`'s lease alive until `until`; `until: 0` gives the lease up (graceful stop). */
  heartbeat(owner: string, until: number): Promise<void>
  /** Returns outbox rows ready to publish and hides them from other claims until `holdUntil`. */
  claimOutbox(options: OutboxClaimOptions): Promise<OutboxRecord[]>
  /** Removes published outbox rows. */
  ackOutbox(ids: readonly string[]): Promise<void>

  /** Optional, as a group (see `ScheduleStore`): keeps `engine.schedule`'s schedules. Without them schedules are refused. */
  putSchedule?: ScheduleStore['putSchedule']
  getSchedule?: ScheduleStore['getSchedule']
  listSchedules?: ScheduleStore['listSchedules']
  deleteSchedule?: ScheduleStore['deleteSchedule']
  claimDueSchedules?: ScheduleStore['claimDueSchedules']

  /** Optional, as a group (see `FlowStore`): flow control of activities (limits, breaker, pause). Without them engines refuse it. */
  admitActivity?: FlowStore['admitActivity']
  releaseActivity?: FlowStore['releaseActivity']
  controlActivity?: FlowStore['controlActivity']
  listActivityControls?: FlowStore['listActivityControls']
}

/** Earliest time something of a running instance is due, or null. */
export function nextDue(instance: InstanceRecord): number | null {
  if (instance.status !== 'running') return null
  let due: number | null = null
  for (const timer of instance.timers) if (due === null || timer.deadline < due) due = timer.deadline
  // A spawn's task waits for its child's end, not for a time.
  for (const task of instance.tasks) if (!task.child && (due === null || task.runAt < due)) due = task.runAt
  return due
}
