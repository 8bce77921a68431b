/**
 * What a store keeps of a schedule, and the optional Store methods that keep it. Apart from store.ts
 * so the schedule parts (spec maths, engine side, SQL) import these types without the instance ones.
 */

/** A schedule's definition as stored (JSON): what `engine.schedule` was given, validated and normalised. */
export interface ScheduleDefinition {
  /** A cron pattern (5 or 6 fields, seconds first when 6), read in `timezone`. Exactly one of `cron` and `every`. */
  readonly cron?: string | undefined
  /** A fixed period in ms: ticks at `startAt` (or one period after `anchor`) and every period after. */
  readonly every?: number | undefined
  /** IANA time zone of `cron`. */
  readonly timezone: string
  readonly machine: string
  /** Absent: the newest version registered in the engine that starts the tick. */
  readonly version?: number | undefined
  /** The input of every tick's instance (JSON); absent when `inputFunction`. */
  readonly input?: unknown
  /** The input is a function of the tick, which lives in the processes that registered it. */
  readonly inputFunction: boolean
  readonly overlap: 'skip' | 'queue' | 'allow'
  /** How many missed ticks (found due later than the grace) to start after downtime: the latest ones. */
  readonly catchUp: number
  /** No tick before this (ms since the epoch). */
  readonly startAt?: number | undefined
  /** No tick after this (ms since the epoch). */
  readonly endAt?: number | undefined
  readonly paused: boolean
  /** When the schedule was first created: the phase of an `every` without `startAt`. */
  readonly anchor: number
}

/** One schedule with where it stands. */
export interface ScheduleRecord {
  readonly id: string
  /** Increases by one on every write: the compare-and-set token of `putSchedule`. */
  readonly revision: number
  readonly definition: ScheduleDefinition
  /** The first tick not yet handled (started, skipped or queued); null when none is left (ended). */
  readonly nextTick: number | null
  /** With `overlap: 'queue'`: the tick waiting for the previous tick's instance to end. */
  readonly queuedTick: number | null
  /** The last tick whose instance was started, and that instance's id. */
  readonly lastTick: number | null
  readonly lastInstance: string | null
  /** Ticks not started because the previous tick's instance was still running (`overlap`). */
  readonly skipped: number
  readonly createdAt: number
  readonly updatedAt: number
}

export interface ScheduleClaimOptions {
  readonly owner: string
  readonly now: number
  /** The claimed schedules are hidden from other claims until this time (or until they are written). */
  readonly leaseUntil: number
  readonly limit: number
}

/**
 * The optional schedule methods of a Store. A store without them still drives instances; only
 * `engine.schedule` and its siblings refuse to run on it.
 *
 * The exactly-once argument rests on two things: a tick's instance id is derived from the schedule
 * and the tick (a second start of it is refused as `exists`), and `putSchedule` is a compare-and-set
 * on the revision (a process whose claim went stale cannot move a schedule back).
 */
export interface ScheduleStore {
  /**
   * Writes a schedule if its revision is still `expectedRevision` (0: creates it; false if the id is
   * taken); `record.revision` must be `expectedRevision + 1`. Releases any claim on it. False when
   * another write came first.
   */
  putSchedule(record: ScheduleRecord, expectedRevision: number): Promise<boolean>
  getSchedule(id: string): Promise<ScheduleRecord | undefined>
  /** Every schedule, ordered by id. */
  listSchedules(): Promise<ScheduleRecord[]>
  /** Removes a schedule; false when there was none. The instances it started stay. */
  deleteSchedule(id: string): Promise<boolean>
  /**
   * Takes the schedules due at `now` (`scheduleDue(record) <= now`) that no other owner holds a live
   * claim on, marks them claimed by `owner` until `leaseUntil`, and returns them (due order).
   */
  claimDueSchedules(options: ScheduleClaimOptions): Promise<ScheduleRecord[]>
}

/** When a schedule next needs an engine: its queued tick or its next tick, whichever is first; null when paused or ended. */
export function scheduleDue(record: ScheduleRecord): number | null {
  if (record.definition.paused) return null
  const { nextTick, queuedTick } = record
  if (queuedTick === null) return nextTick
  return nextTick === null ? queuedTick : Math.min(nextTick, queuedTick)
}

/** The store's methods, or undefined when it lacks any of them. */
export function scheduleMethods(store: Partial<ScheduleStore>): ScheduleStore | undefined {
  const { putSchedule, getSchedule, listSchedules, deleteSchedule, claimDueSchedules } = store
  if (!putSchedule || !getSchedule || !listSchedules || !deleteSchedule || !claimDueSchedules) return undefined
  return store as ScheduleStore
}
