/**
 * The flow-control methods of the PostgreSQL store: the `<prefix>flow_queue`, `<prefix>flow_starts`
 * and `<prefix>activities` tables, created on first use under the store's DDL advisory lock. Every
 * change to an activity's queue runs in one transaction holding an advisory lock of that activity,
 * so admissions from every process on the database are one at a time per activity: its slots are
 * never granted past its limits. Other activities admit in parallel.
 */
import {
  type AdmitOptions,
  applyControl,
  type ControlChange,
  type FlowStore,
  planAdmission,
  rateWindow,
} from '../flow-store.js'
import { CONTROL_COLUMNS, controlParams, rowToControl, rowToSlot, rowToStart, uniqueRequests } from './flow-sql.js'
import { ensureOnce, indexName } from './postgres-ddl.js'

type Row = Record<string, unknown>
type Query = <R extends Row>(what: string, sql: string, params?: unknown[]) => Promise<R[]>
/** A statement inside the current transaction. */
export type TxQuery = <R extends Row>(sql: string, params?: unknown[]) => Promise<R[]>
/** Runs `fn` in one transaction on one connection (rolled back when it throws); errors reported as `what`. */
export type Transaction = <T>(what: string, fn: (query: TxQuery) => Promise<T>) => Promise<T>

/** `table` quotes and schema-qualifies a table name; `lockKey` is the key of the store's DDL advisory lock. */
export function postgresFlow(
  query: Query,
  transaction: Transaction,
  table: (name: string) => string,
  lockKey: string,
): FlowStore {
  const queue = table('flow_queue')
  const starts = table('flow_starts')
  const activities = table('activities')
  const ensure = ensureOnce(
    query,
    'creating the flow-control tables',
    lockKey,
    `CREATE TABLE IF NOT EXISTS ${queue} (
      activity text NOT NULL,
      holder text NOT NULL,
      key text,
      since bigint NOT NULL,
      owner text NOT NULL,
      running boolean NOT NULL,
      seen_at bigint NOT NULL,
      PRIMARY KEY (activity, holder)
    );
    CREATE TABLE IF NOT EXISTS ${starts} (
      activity text NOT NULL,
      key text,
      at bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ${indexName(starts, 'at')} ON ${starts} (activity, at);
    CREATE TABLE IF NOT EXISTS ${activities} (
      activity text PRIMARY KEY,
      paused boolean NOT NULL,
      failures integer NOT NULL,
      open_until bigint,
      probe text,
      probe_until bigint NOT NULL,
      updated_at bigint NOT NULL
    );`,
  )
  /** Held until the transaction ends: one admission (or release) of an activity at a time. */
  const lock = (q: TxQuery, kind: 'flow' | 'control', activity: string) =>
    q('SELECT pg_advisory_xact_lock(hashtext($1))', [`${lockKey} ${kind} ${activity}`])

  return {
    async admitActivity(options: AdmitOptions) {
      const { activity, owner, now } = options
      const requests = uniqueRequests(options.requests)
      await ensure()
      return transaction('admitActivity', async (q) => {
        await lock(q, 'flow', activity)
        // Stale rows go, the rest of this owner's running rows are refreshed (disjoint: the
        // refresh skips rows the same statement deletes), and starts no window counts go.
        await q(
          `WITH stale AS (DELETE FROM ${queue} WHERE activity = $1 AND seen_at < $2),
                old AS (DELETE FROM ${starts} WHERE activity = $1 AND at <= $3)
           UPDATE ${queue} SET seen_at = $4
           WHERE activity = $1 AND owner = $5 AND holder = ANY($6::text[]) AND seen_at >= $2`,
          [activity, options.staleBefore, now - rateWindow(options.limits), now, owner, [...options.running]],
        )
        if (requests.length > 0)
          await q(
            `INSERT INTO ${queue} (activity, holder, key, since, owner, running, seen_at)
             SELECT $1, r.holder, r.key, r.since, $2, false, $3
             FROM unnest($4::text[], $5::text[], $6::bigint[]) AS r(holder, key, since)
             ON CONFLICT (activity, holder) DO UPDATE SET owner = excluded.owner, seen_at = excluded.seen_at
             WHERE NOT ${queue}.running`,
            [
              activity,
              owner,
              now,
              requests.map((r) => r.holder),
              requests.map((r) => r.key),
              requests.map((r) => r.since),
            ],
          )
        const slots = await q(`SELECT holder, key, since, owner, running, seen_at FROM ${queue} WHERE activity = $1`, [
          activity,
        ])
        const logged = await q(`SELECT key, at FROM ${starts} WHERE activity = $1`, [activity])
        const result = planAdmission(
          slots.map(rowToSlot),
          logged.map(rowToStart),
          options.limits,
          now,
          new Set(requests.map((r) => r.holder)),
        )
        if (result.granted.length > 0)
          await q(
            `WITH granted AS (
               UPDATE ${queue} SET running = true, seen_at = $2 WHERE activity = $1 AND holder = ANY($3::text[])
               RETURNING key)
             INSERT INTO ${starts} (activity, key, at) SELECT $1, key, $2 FROM granted`,
            [activity, now, [...result.granted]],
          )
        return result
      })
    },
    async releaseActivity(activity: string, holders: readonly string[]) {
      if (holders.length === 0) return
      await ensure()
      // Under the activity's lock, so a release never lands between an admission's read and write.
      await transaction('releaseActivity', async (q) => {
        await lock(q, 'flow', activity)
        await q(`DELETE FROM ${queue} WHERE activity = $1 AND holder = ANY($2::text[])`, [activity, [...holders]])
      })
    },
    async controlActivity(activity: string, change: ControlChange, now: number) {
      await ensure()
      // The lock, not FOR UPDATE: it also covers a row not written yet.
      return transaction('controlActivity', async (q) => {
        await lock(q, 'control', activity)
        const rows = await q(`SELECT ${CONTROL_COLUMNS} FROM ${activities} WHERE activity = $1`, [activity])
        const result = applyControl(rows[0] ? rowToControl(rows[0]) : undefined, activity, change, now)
        if (result.applied)
          await q(
            `INSERT INTO ${activities} (${CONTROL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (activity) DO UPDATE SET paused = excluded.paused, failures = excluded.failures,
               open_until = excluded.open_until, probe = excluded.probe, probe_until = excluded.probe_until,
               updated_at = excluded.updated_at`,
            [...controlParams(result.control, (paused) => paused)],
          )
        return result
      })
    },
    async listActivityControls() {
      await ensure()
      const rows = await query(
        'listActivityControls',
        `SELECT ${CONTROL_COLUMNS} FROM ${activities} ORDER BY activity COLLATE "C"`,
      )
      return rows.map(rowToControl)
    },
  }
}
