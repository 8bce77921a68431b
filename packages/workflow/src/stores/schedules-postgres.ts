/**
 * The schedule methods of the PostgreSQL store: the `<prefix>schedules` table, created on first use
 * (under the same advisory lock as the other tables, so processes starting together do not race).
 * Due schedules are claimed with `FOR UPDATE SKIP LOCKED` and held by a lease: two processes never
 * claim one schedule at once, and a claim left by a killed process lapses at `lease_until`.
 */
import type { ScheduleClaimOptions, ScheduleRecord, ScheduleStore } from '../schedule-store.js'
import { ensureOnce, indexName } from './postgres-ddl.js'
import { checkPut, rowToSchedule, scheduleToRow } from './schedules-sql.js'

type Query = <R extends Record<string, unknown>>(what: string, sql: string, params?: unknown[]) => Promise<R[]>
type Row = { id: string; revision: number; data: unknown }

/** `table` is the quoted, schema-qualified table name; `lockKey` the key of the store's DDL advisory lock. */
export function postgresSchedules(query: Query, table: string, lockKey: string): ScheduleStore {
  const ensure = ensureOnce(
    query,
    'creating the schedules table',
    lockKey,
    `CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY,
      revision int NOT NULL,
      due bigint,
      owner text,
      lease_until bigint NOT NULL DEFAULT 0,
      data jsonb NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ${indexName(table, 'due')} ON ${table} (due) WHERE due IS NOT NULL;`,
  )
  return {
    async putSchedule(record: ScheduleRecord, expectedRevision: number) {
      checkPut(record, expectedRevision)
      const row = scheduleToRow(record)
      await ensure()
      const rows =
        expectedRevision === 0
          ? await query(
              'putSchedule',
              `INSERT INTO ${table} (id, revision, due, data) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id`,
              [row.id, row.revision, row.due, row.data],
            )
          : await query(
              'putSchedule',
              `UPDATE ${table} SET revision = $2, due = $3, data = $4::jsonb, owner = NULL, lease_until = 0
               WHERE id = $1 AND revision = $5 RETURNING id`,
              [row.id, row.revision, row.due, row.data, expectedRevision],
            )
      return rows.length === 1
    },
    async getSchedule(id: string) {
      await ensure()
      const rows = await query<Row>('getSchedule', `SELECT id, revision, data FROM ${table} WHERE id = $1`, [id])
      return rows[0] ? rowToSchedule(rows[0]) : undefined
    },
    async listSchedules() {
      await ensure()
      const rows = await query<Row>('listSchedules', `SELECT id, revision, data FROM ${table} ORDER BY id COLLATE "C"`)
      return rows.map(rowToSchedule)
    },
    async deleteSchedule(id: string) {
      await ensure()
      return (await query('deleteSchedule', `DELETE FROM ${table} WHERE id = $1 RETURNING id`, [id])).length === 1
    },
    async claimDueSchedules(options: ScheduleClaimOptions) {
      await ensure()
      const rows = await query<Row & { due: string }>(
        'claimDueSchedules',
        `WITH c AS (
           SELECT id FROM ${table}
           WHERE due IS NOT NULL AND due <= $1 AND (owner IS NULL OR owner = $2 OR lease_until <= $1)
           ORDER BY due LIMIT $3 FOR UPDATE SKIP LOCKED)
         UPDATE ${table} s SET owner = $2, lease_until = $4 FROM c WHERE s.id = c.id
         RETURNING s.id, s.revision, s.data, s.due`,
        [options.now, options.owner, options.limit, options.leaseUntil],
      )
      return rows.sort((a, b) => Number(a.due) - Number(b.due)).map(rowToSchedule)
    },
  }
}
