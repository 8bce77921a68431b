/** The schedule methods of the memory store: a map of rows, copied in and out as a database would. */
import type { ScheduleClaimOptions, ScheduleRecord, ScheduleStore } from '../schedule-store.js'
import { checkPut, rowToSchedule, type ScheduleRow, scheduleToRow } from './schedules-sql.js'

export function memorySchedules(check: () => void): ScheduleStore {
  const rows = new Map<string, ScheduleRow & { owner: string | null; leaseUntil: number }>()
  return {
    async putSchedule(record: ScheduleRecord, expectedRevision: number) {
      check()
      checkPut(record, expectedRevision)
      const current = rows.get(record.id)
      if ((current?.revision ?? 0) !== expectedRevision) return false
      rows.set(record.id, { ...scheduleToRow(record), owner: null, leaseUntil: 0 })
      return true
    },
    async getSchedule(id: string) {
      check()
      const row = rows.get(id)
      return row ? rowToSchedule(row) : undefined
    },
    async listSchedules() {
      check()
      return [...rows.values()]
        .sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)))
        .map((row) => rowToSchedule(row))
    },
    async deleteSchedule(id: string) {
      check()
      return rows.delete(id)
    },
    async claimDueSchedules(options: ScheduleClaimOptions) {
      check()
      const due = [...rows.values()]
        .filter(
          (row) =>
            row.due !== null &&
            row.due <= options.now &&
            (row.owner === null || row.owner === options.owner || row.leaseUntil <= options.now),
        )
        .sort((a, b) => (a.due as number) - (b.due as number))
        .slice(0, options.limit)
      for (const row of due) {
        row.owner = options.owner
        row.leaseUntil = options.leaseUntil
      }
      return due.map((row) => rowToSchedule(row))
    },
  }
}
