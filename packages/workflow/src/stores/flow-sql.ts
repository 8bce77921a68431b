/**
 * The flow-control rows shared by the stores: queue rows (one per attempt waiting for or holding a
 * slot), logged starts, and control rows as columns. Databases hand timestamps back as bigint
 * strings or numbers and booleans as 0/1: read back here, once, the same way for every store.
 */
import type { ActivityControl, FlowRequest, FlowSlot, FlowStart } from '../flow-store.js'

type Row = Record<string, unknown>

const nullableNumber = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value))
const nullableString = (value: unknown): string | null => (value === null || value === undefined ? null : String(value))
const bool = (value: unknown): boolean => value === true || Number(value) === 1

/** Columns: holder, key, since, owner, running, seen_at. */
export function rowToSlot(row: Row): FlowSlot {
  return {
    holder: String(row.holder),
    key: nullableString(row.key),
    since: Number(row.since),
    owner: String(row.owner),
    running: bool(row.running),
    seenAt: Number(row.seen_at),
  }
}

/** Columns: key, at. */
export function rowToStart(row: Row): FlowStart {
  return { key: nullableString(row.key), at: Number(row.at) }
}

/** Columns of a control row, in the order `controlParams` gives them. */
export const CONTROL_COLUMNS = 'activity, paused, failures, open_until, probe, probe_until, updated_at'

export function rowToControl(row: Row): ActivityControl {
  return {
    activity: String(row.activity),
    paused: bool(row.paused),
    failures: Number(row.failures),
    openUntil: nullableNumber(row.open_until),
    probe: nullableString(row.probe),
    probeUntil: Number(row.probe_until),
    updatedAt: Number(row.updated_at),
  }
}

/** The values of `CONTROL_COLUMNS`; `paused` as given by `flag` (SQLite binds no booleans). */
export function controlParams<B>(control: ActivityControl, flag: (value: boolean) => B) {
  return [
    control.activity,
    flag(control.paused),
    control.failures,
    control.openUntil,
    control.probe,
    control.probeUntil,
    control.updatedAt,
  ] as const
}

/** The requests with each holder once (the first wins): one row per holder, and one upsert each. */
export function uniqueRequests(requests: readonly FlowRequest[]): FlowRequest[] {
  const seen = new Set<string>()
  return requests.filter((r) => !seen.has(r.holder) && seen.add(r.holder))
}
