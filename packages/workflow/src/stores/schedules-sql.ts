/**
 * The schedule rows shared by the SQL stores: one row per schedule with its revision (the
 * compare-and-set token), when it is next due (what claims look at), the claim (owner and lease),
 * and the record itself as JSON.
 */
import { WorkflowError } from '../errors.js'
import { type ScheduleRecord, scheduleDue } from '../schedule-store.js'

export interface ScheduleRow {
  id: string
  revision: number
  due: number | null
  data: string
}

export function scheduleToRow(record: ScheduleRecord): ScheduleRow {
  const { id, revision, ...rest } = record
  if (!Number.isInteger(revision) || revision < 1)
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `putSchedule(${id}): expected a revision of at least 1, got ${revision}`,
    )
  return { id, revision, due: scheduleDue(record), data: JSON.stringify(rest) }
}

export function rowToSchedule(row: { id: unknown; revision: unknown; data: unknown }): ScheduleRecord {
  const data = typeof row.data === 'string' ? JSON.parse(row.data) : row.data
  return { id: String(row.id), revision: Number(row.revision), ...(data as Omit<ScheduleRecord, 'id' | 'revision'>) }
}

/** `putSchedule`'s precondition, checked before any SQL runs. */
export function checkPut(record: ScheduleRecord, expectedRevision: number): void {
  if (record.revision !== expectedRevision + 1)
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `putSchedule(${record.id}): record.revision must be expectedRevision + 1 (${expectedRevision + 1}), got ${record.revision}`,
    )
}
