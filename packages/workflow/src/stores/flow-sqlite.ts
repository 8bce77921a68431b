/**
 * The flow-control methods of the SQLite store: the `wf_flow_queue`, `wf_flow_starts` and
 * `wf_activities` tables, created on first use. Each admission is one `BEGIN IMMEDIATE`
 * transaction, which holds the file's write lock: handles on the same file, in this process or
 * another, admit one at a time.
 */
import { storeUnavailable } from '../errors.js'
import {
  type AdmitOptions,
  applyControl,
  type ControlChange,
  type FlowStore,
  planAdmission,
  rateWindow,
} from '../flow-store.js'
import { CONTROL_COLUMNS, controlParams, rowToControl, rowToSlot, rowToStart, uniqueRequests } from './flow-sql.js'
import type { SqliteDatabase } from './sqlite-driver.js'

const DDL = `
CREATE TABLE IF NOT EXISTS wf_flow_queue (
  activity TEXT NOT NULL,
  holder TEXT NOT NULL,
  key TEXT,
  since INTEGER NOT NULL,
  owner TEXT NOT NULL,
  running INTEGER NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (activity, holder)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_flow_starts (
  activity TEXT NOT NULL,
  key TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_flow_starts_at ON wf_flow_starts (activity, at);
CREATE TABLE IF NOT EXISTS wf_activities (
  activity TEXT PRIMARY KEY,
  paused INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  open_until INTEGER,
  probe TEXT,
  probe_until INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
`

function prepare(db: SqliteDatabase) {
  const s = (sql: string) => db.prepare(sql)
  return {
    dropStale: s('DELETE FROM wf_flow_queue WHERE activity = ? AND seen_at < ?'),
    refresh: s('UPDATE wf_flow_queue SET seen_at = ? WHERE activity = ? AND holder = ? AND owner = ?'),
    register: s(
      `INSERT INTO wf_flow_queue (activity, holder, key, since, owner, running, seen_at) VALUES (?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT (activity, holder) DO UPDATE SET owner = excluded.owner, seen_at = excluded.seen_at WHERE NOT running`,
    ),
    dropStarts: s('DELETE FROM wf_flow_starts WHERE activity = ? AND at <= ?'),
    slots: s('SELECT holder, key, since, owner, running, seen_at FROM wf_flow_queue WHERE activity = ?'),
    starts: s('SELECT key, at FROM wf_flow_starts WHERE activity = ?'),
    grant: s('UPDATE wf_flow_queue SET running = 1, seen_at = ? WHERE activity = ? AND holder = ?'),
    logStart: s('INSERT INTO wf_flow_starts (activity, key, at) VALUES (?, ?, ?)'),
    release: s('DELETE FROM wf_flow_queue WHERE activity = ? AND holder = ?'),
    control: s(`SELECT ${CONTROL_COLUMNS} FROM wf_activities WHERE activity = ?`),
    putControl: s(`INSERT OR REPLACE INTO wf_activities (${CONTROL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    controls: s(`SELECT ${CONTROL_COLUMNS} FROM wf_activities ORDER BY activity`),
  }
}

type Statements = ReturnType<typeof prepare>
type Row = Record<string, unknown>

export function sqliteFlow(database: () => SqliteDatabase): FlowStore {
  const prepared = new WeakMap<SqliteDatabase, Statements>()
  const run = <T>(what: string, fn: (db: SqliteDatabase, st: Statements) => T): Promise<T> => {
    try {
      const db = database()
      let st = prepared.get(db)
      if (!st) {
        db.exec(DDL)
        st = prepare(db)
        prepared.set(db, st)
      }
      return Promise.resolve(fn(db, st))
    } catch (error) {
      return Promise.reject(storeUnavailable('sqlite', what, error))
    }
  }
  return {
    admitActivity(options: AdmitOptions) {
      const { activity, owner, now } = options
      const requests = uniqueRequests(options.requests)
      return run('admitActivity', (db, st) =>
        db.transaction(() => {
          st.dropStale.run(activity, options.staleBefore)
          for (const holder of options.running) st.refresh.run(now, activity, holder, owner)
          for (const r of requests) st.register.run(activity, r.holder, r.key, r.since, owner, now)
          st.dropStarts.run(activity, now - rateWindow(options.limits))
          const slots = (st.slots.all(activity) as Row[]).map(rowToSlot)
          const starts = (st.starts.all(activity) as Row[]).map(rowToStart)
          const result = planAdmission(slots, starts, options.limits, now, new Set(requests.map((r) => r.holder)))
          const keys = new Map(slots.map((slot) => [slot.holder, slot.key]))
          for (const holder of result.granted) {
            st.grant.run(now, activity, holder)
            st.logStart.run(activity, keys.get(holder) ?? null, now)
          }
          return result
        }),
      )
    },
    async releaseActivity(activity: string, holders: readonly string[]) {
      await run('releaseActivity', (db, st) =>
        db.transaction(() => {
          for (const holder of holders) st.release.run(activity, holder)
        }),
      )
    },
    controlActivity(activity: string, change: ControlChange, now: number) {
      return run('controlActivity', (db, st) =>
        db.transaction(() => {
          const row = st.control.get(activity) as Row | undefined
          const result = applyControl(row ? rowToControl(row) : undefined, activity, change, now)
          if (result.applied) st.putControl.run(...controlParams(result.control, (paused) => (paused ? 1 : 0)))
          return result
        }),
      )
    },
    listActivityControls() {
      return run('listActivityControls', (_db, st) => (st.controls.all() as Row[]).map(rowToControl))
    },
  }
}
