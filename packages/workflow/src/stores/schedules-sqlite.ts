/**
 * The schedule methods of the SQLite store: the `wf_schedules` table, created on first use. One
 * process drives a SQLite file, but claims still take a lease so a restarted process (or a second
 * engine on the same file) does not run a schedule another is in the middle of.
 */
import { storeUnavailable } from '../errors.js'
import type { ScheduleClaimOptions, ScheduleRecord, ScheduleStore } from '../schedule-store.js'
import { checkPut, rowToSchedule, scheduleToRow } from './schedules-sql.js'
import type { SqliteDatabase } from './sqlite-driver.js'

const DDL = `
CREATE TABLE IF NOT EXISTS wf_schedules (
  id TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  due INTEGER,
  owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_schedules_due ON wf_schedules (due) WHERE due IS NOT NULL;
`

type Row = { id: string; revision: number; data: string }

export function sqliteSchedules(database: () => SqliteDatabase): ScheduleStore {
  const ready = new WeakSet<SqliteDatabase>()
  const run = <T>(what: string, fn: (db: SqliteDatabase) => T): Promise<T> => {
    try {
      const db = database()
      if (!ready.has(db)) {
        db.exec(DDL)
        ready.add(db)
      }
      return Promise.resolve(fn(db))
    } catch (error) {
      return Promise.reject(storeUnavailable('sqlite', what, error))
    }
  }
  return {
    async putSchedule(record: ScheduleRecord, expectedRevision: number) {
      checkPut(record, expectedRevision)
      const row = scheduleToRow(record)
      return run('putSchedule', (db) => {
        const changes =
          expectedRevision === 0
            ? db
                .prepare(
                  'INSERT INTO wf_schedules (id, revision, due, data) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
                )
                .run(row.id, row.revision, row.due, row.data).changes
            : db
                .prepare(
                  'UPDATE wf_schedules SET revision = ?, due = ?, data = ?, owner = NULL, lease_until = 0 WHERE id = ? AND revision = ?',
                )
                .run(row.revision, row.due, row.data, row.id, expectedRevision).changes
        return Number(changes) === 1
      })
    },
    getSchedule(id: string) {
      return run('getSchedule', (db) => {
        const row = db.prepare('SELECT id, revision, data FROM wf_schedules WHERE id = ?').get(id) as Row | undefined
        return row ? rowToSchedule(row) : undefined
      })
    },
    listSchedules() {
      return run('listSchedules', (db) =>
        (db.prepare('SELECT id, revision, data FROM wf_schedules ORDER BY id').all() as Row[]).map(rowToSchedule),
      )
    },
    deleteSchedule(id: string) {
      return run(
        'deleteSchedule',
        (db) => Number(db.prepare('DELETE FROM wf_schedules WHERE id = ?').run(id).changes) === 1,
      )
    },
    claimDueSchedules(options: ScheduleClaimOptions) {
      return run('claimDueSchedules', (db) =>
        db.transaction(() => {
          const rows = db
            .prepare(
              `SELECT id, revision, data FROM wf_schedules
               WHERE due IS NOT NULL AND due <= ? AND (owner IS NULL OR owner = ? OR lease_until <= ?)
               ORDER BY due LIMIT ?`,
            )
            .all(options.now, options.owner, options.now, options.limit) as Row[]
          const claim = db.prepare('UPDATE wf_schedules SET owner = ?, lease_until = ? WHERE id = ?')
          for (const row of rows) claim.run(options.owner, options.leaseUntil, row.id)
          return rows.map(rowToSchedule)
        }),
      )
    },
  }
}
