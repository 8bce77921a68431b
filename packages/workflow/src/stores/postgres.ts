import { sleep } from '@backplane/internal'
import type * as Pg from 'pg'
import { storeUnavailable, WorkflowError } from '../errors.js'
import type {
  ClaimOptions,
  Commit,
  CommitResult,
  CountFilter,
  HistoryRecord,
  InstanceCount,
  ListFilter,
  OutboxClaimOptions,
  OutboxRecord,
  Store,
} from '../store.js'
import { loadPgDriver } from './drivers.js'
import {
  countQuery,
  type EncodedCommit,
  encodeCommit,
  INSTANCE_COLUMNS,
  listConditions,
  type PendingCommit,
  rowToHistory,
  rowToOutbox,
  rowToRecord,
} from './encode.js'
import { postgresFlow, type TxQuery } from './flow-postgres.js'
import { postgresSchedules } from './schedules-postgres.js'

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`. Either this or `pool`. */
  readonly connectionString?: string | undefined
  /** A pg Pool of yours (not ended by `close()`). */
  readonly pool?: Pg.Pool | undefined
  /** Schema of the tables (created when missing). Default "public". */
  readonly schema?: string | undefined
  /** Prefix of the table names. Default "workflow_". */
  readonly tablePrefix?: string | undefined
  /** Size of the pool the store creates. Default 10. */
  readonly max?: number | undefined
  /** Most commits in one transaction. Default 500. */
  readonly maxBatch?: number | undefined
  /** Batches in flight at once, each on its own connection. Default 4. */
  readonly writers?: number | undefined
}

/** Ids sort bytewise whatever the database's collation, as in the other stores: `list` pages by it. */
const ID_BYTEWISE = 'id COLLATE "C"'
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/

const unavailable = (what: string, error: unknown): WorkflowError => storeUnavailable('postgres', what, error)

/**
 * PostgreSQL: many engine processes on one database. Transitions are compare-and-set on the
 * instance revision; due instances are claimed with `FOR UPDATE SKIP LOCKED` and held by a lease
 * (each process's heartbeat row), so each instance is driven by one process at a time and taken
 * over when that process stops heartbeating. Concurrent commits are grouped into one transaction.
 */
export function postgresStore(options: string | PostgresStoreOptions): Store {
  const opts: PostgresStoreOptions = typeof options === 'string' ? { connectionString: options } : (options ?? {})
  if (opts.pool === undefined && (typeof opts.connectionString !== 'string' || opts.connectionString === '')) {
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      'postgresStore: expected a connection string (postgres://user@host:port/db) or { connectionString } or { pool }',
    )
  }
  const schema = opts.schema ?? 'public'
  const prefix = opts.tablePrefix ?? 'workflow_'
  if (!IDENTIFIER.test(schema))
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `postgresStore: schema: expected a plain identifier (letters, digits, _), got ${JSON.stringify(schema)}`,
    )
  if (!/^[A-Za-z0-9_]{0,20}$/.test(prefix))
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `postgresStore: tablePrefix: expected letters, digits and _, got ${JSON.stringify(prefix)}`,
    )
  const maxBatch = positiveInteger('maxBatch', opts.maxBatch, 500)
  const writers = positiveInteger('writers', opts.writers, 4)
  const max = positiveInteger('max', opts.max, 10)
  const t = (name: string) => `"${schema}"."${prefix}${name}"`
  /** The advisory lock held while creating any of these tables: processes starting together do not race. */
  const lockKey = `@backplane/workflow ${schema}.${prefix}`
  const T = {
    instances: t('instances'),
    history: t('history'),
    events: t('events'),
    outbox: t('outbox'),
    owners: t('owners'),
  }

  let pool: Pg.Pool | undefined
  let ownPool = false
  let opening: Promise<void> | undefined
  let queue: PendingCommit[] = []
  let activeWriters = 0
  let busyWriters = 0

  const ddl = `
    CREATE SCHEMA IF NOT EXISTS "${schema}";
    CREATE TABLE IF NOT EXISTS ${T.instances} (
      id text PRIMARY KEY,
      machine text NOT NULL,
      version integer NOT NULL,
      state text NOT NULL,
      status text NOT NULL,
      revision integer NOT NULL,
      data jsonb NOT NULL,
      owner text,
      next_due bigint,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    ) WITH (fillfactor = 70);
    CREATE INDEX IF NOT EXISTS "${prefix}instances_due" ON ${T.instances} (next_due) WHERE next_due IS NOT NULL;
    CREATE INDEX IF NOT EXISTS "${prefix}instances_list" ON ${T.instances} (machine, status);
    CREATE TABLE IF NOT EXISTS ${T.history} (
      instance_id text NOT NULL,
      seq integer NOT NULL,
      at bigint NOT NULL,
      kind text NOT NULL,
      event jsonb NOT NULL,
      from_state text,
      to_state text NOT NULL,
      PRIMARY KEY (instance_id, seq)
    );
    CREATE TABLE IF NOT EXISTS ${T.events} (
      instance_id text NOT NULL,
      event_id text NOT NULL,
      PRIMARY KEY (instance_id, event_id)
    );
    CREATE TABLE IF NOT EXISTS ${T.outbox} (
      seq bigserial PRIMARY KEY,
      id text NOT NULL UNIQUE,
      instance_id text NOT NULL,
      topic text NOT NULL,
      key text,
      headers jsonb,
      data jsonb NOT NULL,
      created_at bigint NOT NULL,
      available_at bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS "${prefix}outbox_ready" ON ${T.outbox} (available_at);
    CREATE TABLE IF NOT EXISTS ${T.owners} (
      owner text PRIMARY KEY,
      alive_until bigint NOT NULL
    );`

  const requirePool = (): Pg.Pool => {
    if (!pool)
      throw new WorkflowError(
        'WORKFLOW_STORE_UNAVAILABLE',
        'postgres store: not open (open() it, or hand it to createEngine)',
      )
    return pool
  }

  const query = async <R extends Pg.QueryResultRow>(
    what: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> => {
    try {
      return (await requirePool().query<R>(sql, params)).rows
    } catch (error) {
      throw unavailable(what, error)
    }
  }

  /** One transaction on one pooled connection (see `Transaction` in flow-postgres.ts). */
  const transaction = async <T>(what: string, fn: (q: TxQuery) => Promise<T>): Promise<T> => {
    let client: Pg.PoolClient
    try {
      client = await requirePool().connect()
    } catch (error) {
      throw unavailable(what, error)
    }
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const result = await fn(async (sql, params) => (await client.query(sql, params)).rows)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      if (isConnectionError(error)) broken = error as Error
      throw unavailable(what, error)
    } finally {
      client.release(broken)
    }
  }

  /**
   * One batch is one statement, so one round trip and one transaction (autocommit): processed event
   * ids are checked, instances created or compare-and-set on their revision, and the history,
   * event ids and outbox rows of exactly the commits that succeeded are inserted. Rows to update
   * are locked in id order first (the ordered `FOR UPDATE` below): two processes' batches never
   * deadlock. Returns each commit's result in order.
   */
  const batchSql = `
    WITH c AS (
      SELECT * FROM json_to_recordset($1::json)
        AS c(id text, expected int, event_id text, machine text, version int, state text, status text, revision int,
             data jsonb, set_owner bool, owner text, next_due bigint, created_at bigint, updated_at bigint)
    ),
    dup AS (
      SELECT c.id FROM c JOIN ${T.events} e ON e.instance_id = c.id AND e.event_id = c.event_id WHERE c.expected <> 0
    ),
    ins AS (
      INSERT INTO ${T.instances} (id, machine, version, state, status, revision, data, owner, next_due, created_at, updated_at)
      SELECT id, machine, version, state, status, revision, data, owner, next_due, created_at, updated_at FROM c WHERE c.expected = 0
      ON CONFLICT (id) DO NOTHING RETURNING id
    ),
    lk AS (
      SELECT i.id FROM ${T.instances} i
      WHERE i.id IN (SELECT c.id FROM c WHERE c.expected <> 0 AND c.id NOT IN (SELECT id FROM dup))
      ORDER BY i.id FOR UPDATE
    ),
    upd AS (
      UPDATE ${T.instances} AS i SET version = c.version, state = c.state, status = c.status, revision = c.revision, data = c.data,
        owner = CASE WHEN c.set_owner THEN c.owner ELSE i.owner END, next_due = c.next_due, updated_at = c.updated_at
      FROM c JOIN lk ON lk.id = c.id
      WHERE i.id = c.id AND i.revision = c.expected RETURNING i.id
    ),
    ok AS (SELECT id FROM ins UNION ALL SELECT id FROM upd),
    ev AS (
      INSERT INTO ${T.events} (instance_id, event_id)
      SELECT c.id, c.event_id FROM c WHERE c.event_id IS NOT NULL AND c.id IN (SELECT id FROM ok)
    ),
    hi AS (
      INSERT INTO ${T.history} (instance_id, seq, at, kind, event, from_state, to_state)
      SELECT * FROM json_to_recordset($2::json)
        AS h(instance_id text, seq int, at bigint, kind text, event jsonb, from_state text, to_state text)
      WHERE h.instance_id IN (SELECT id FROM ok)
    ),
    ob AS (
      INSERT INTO ${T.outbox} (id, instance_id, topic, key, headers, data, created_at, available_at)
      -- JSON null data arrives as SQL NULL: store it as the JSON value null.
      SELECT o.id, o.instance_id, o.topic, o.key, o.headers, coalesce(o.data, 'null'::jsonb), o.created_at, o.available_at
      FROM json_to_recordset($3::json)
        AS o(id text, instance_id text, topic text, key text, headers jsonb, data jsonb, created_at bigint, available_at bigint)
      WHERE o.instance_id IN (SELECT id FROM ok)
    )
    SELECT true AS duplicate, id FROM dup UNION ALL SELECT false, id FROM ok`

  const runBatch = async (client: Pg.PoolClient, batch: EncodedCommit[]): Promise<CommitResult[]> => {
    const { rows } = await prepared<{ duplicate: boolean; id: string }>(client, batchSql, batchParams(batch))
    const duplicates = new Set<string>()
    const committed = new Set<string>()
    for (const row of rows) (row.duplicate ? duplicates : committed).add(row.id)
    return batch.map((c): CommitResult => {
      if (duplicates.has(c.row.id)) return { status: 'duplicate' }
      if (committed.has(c.row.id)) return { status: 'committed' }
      return { status: c.expectedRevision === 0 ? 'exists' : 'conflict' }
    })
  }

  /**
   * Takes this writer's share of the queue: split evenly across the writers not already waiting
   * for PostgreSQL, so the engine computes the next transitions while earlier batches commit,
   * instead of every commit waiting for one large batch.
   */
  const takeBatch = (): PendingCommit[] => {
    const share = Math.min(maxBatch, Math.ceil(queue.length / Math.max(1, writers - busyWriters)))
    const batch: PendingCommit[] = []
    const ids = new Set<string>()
    const rest: PendingCommit[] = []
    for (const pending of queue) {
      // One commit per instance per batch: a second one waits for the next batch.
      if (batch.length < share && !ids.has(pending.encoded.row.id)) {
        ids.add(pending.encoded.row.id)
        batch.push(pending)
      } else rest.push(pending)
    }
    queue = rest
    return batch
  }

  const writer = async () => {
    try {
      while (queue.length > 0) {
        const batch = takeBatch()
        busyWriters++
        let client: Pg.PoolClient
        try {
          client = await requirePool().connect()
        } catch (error) {
          busyWriters--
          for (const p of batch) p.reject(unavailable('commit', error))
          continue
        }
        let broken: Error | undefined
        try {
          const results = await runBatch(
            client,
            batch.map((p) => p.encoded),
          )
          batch.forEach((p, i) => {
            p.resolve(results[i] as CommitResult)
          })
        } catch (error) {
          if (batch.length === 1) (batch[0] as PendingCommit).reject(unavailable('commit', error))
          else {
            // A failing commit must not fail the others: one transaction each.
            for (const p of batch) {
              try {
                p.resolve(((await runBatch(client, [p.encoded])) as CommitResult[])[0] as CommitResult)
              } catch (single) {
                p.reject(unavailable('commit', single))
                if (isConnectionError(single)) broken = single as Error
              }
            }
          }
          if (isConnectionError(error)) broken = error as Error
        } finally {
          busyWriters--
          client.release(broken)
        }
      }
    } finally {
      activeWriters--
    }
  }

  const startWriter = () => {
    if (activeWriters >= writers || queue.length === 0) return
    activeWriters++
    setImmediate(() => {
      void writer().then(startWriter)
    })
  }

  const store: Store = {
    // Schedules (optional Store methods): their own table, created on first use under the DDL lock.
    ...postgresSchedules(query, t('schedules'), lockKey),
    // Flow control (optional Store methods): likewise, each admission under a lock of its activity.
    ...postgresFlow(query, transaction, t, lockKey),
    kind: 'postgres',
    shared: true,
    open() {
      if (pool) return Promise.resolve()
      if (!opening) {
        opening = (async () => {
          const pg = await loadPgDriver()
          const candidate = opts.pool ?? new pg.Pool({ connectionString: opts.connectionString, max })
          ownPool = opts.pool === undefined
          // An idle client losing its connection must not crash the process; the next query reports it.
          if (ownPool) candidate.on('error', () => undefined)
          let client: Pg.PoolClient | undefined
          try {
            client = await candidate.connect()
            await client.query('BEGIN')
            await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey])
            await client.query(ddl)
            await client.query('COMMIT')
            client.release()
          } catch (error) {
            if (client) {
              await client.query('ROLLBACK').catch(() => undefined)
              client.release(true)
            }
            if (ownPool) await candidate.end().catch(() => undefined)
            throw unavailable(`connecting to ${redact(opts.connectionString)}`, error)
          }
          pool = candidate
        })().finally(() => {
          opening = undefined
        })
      }
      return opening
    },
    async close() {
      if (opening) await opening.catch(() => undefined)
      while (queue.length > 0 || activeWriters > 0) await sleep(5)
      const current = pool
      pool = undefined
      if (current && ownPool) await current.end()
    },
    commit(commit: Commit): Promise<CommitResult> {
      let encoded: EncodedCommit
      try {
        encoded = encodeCommit(commit)
        requirePool()
      } catch (error) {
        return Promise.reject(error)
      }
      return new Promise((resolve, reject) => {
        queue.push({ encoded, resolve, reject })
        startWriter()
      })
    },
    async load(id) {
      const rows = await query<Record<string, unknown>>(
        'load',
        `SELECT ${INSTANCE_COLUMNS} FROM ${T.instances} WHERE id = $1`,
        [id],
      )
      const row = rows[0]
      return row ? rowToRecord(row) : undefined
    },
    async list(filter: ListFilter) {
      const { where, params } = listConditions(filter, (n) => `$${n}`, ID_BYTEWISE)
      const rows = await query<Record<string, unknown>>(
        'list',
        `SELECT ${INSTANCE_COLUMNS} FROM ${T.instances} ${where} ORDER BY ${ID_BYTEWISE} LIMIT $${params.length}`,
        params,
      )
      return rows.map((row) => rowToRecord(row))
    },
    async countInstances(filter: CountFilter): Promise<InstanceCount[]> {
      const { sql, params } = countQuery(T.instances, filter, (n) => `$${n}`)
      return query<InstanceCount>('countInstances', sql, params)
    },
    async history(id): Promise<HistoryRecord[]> {
      const rows = await query('history', `SELECT * FROM ${T.history} WHERE instance_id = $1 ORDER BY seq`, [id])
      return rows.map(rowToHistory)
    },
    async hasEvent(instanceId, eventId) {
      const rows = await query('hasEvent', `SELECT 1 FROM ${T.events} WHERE instance_id = $1 AND event_id = $2`, [
        instanceId,
        eventId,
      ])
      return rows.length > 0
    },
    async claim(claim: ClaimOptions) {
      const byId = claim.afterId !== undefined
      const rows = await query<Record<string, unknown> & { id: string }>(
        'claim',
        `WITH c AS (
           SELECT i.id FROM ${T.instances} i
           WHERE i.next_due IS NOT NULL AND i.next_due <= $1
             AND ($2 OR i.owner IS NULL OR (i.owner = $3 AND $4)
                  OR (i.owner <> $3 AND NOT EXISTS (SELECT 1 FROM ${T.owners} o WHERE o.owner = i.owner AND o.alive_until > $5)))
             ${byId ? 'AND i.id COLLATE "C" > $7 ORDER BY i.id COLLATE "C"' : 'ORDER BY i.next_due'} LIMIT $6
           FOR UPDATE OF i SKIP LOCKED)
         UPDATE ${T.instances} i SET owner = $3 FROM c WHERE i.id = c.id RETURNING ${INSTANCE_COLUMNS.split(', ')
           .map((c) => `i.${c}`)
           .join(', ')}`,
        [
          Math.min(claim.dueBefore, Number.MAX_SAFE_INTEGER),
          claim.takeover,
          claim.owner,
          claim.includeOwn,
          claim.now,
          claim.limit,
          ...(byId ? [claim.afterId] : []),
        ],
      )
      // RETURNING has no order: put pages back in id order (bytewise, as COLLATE "C").
      if (byId) rows.sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id)))
      return rows.map((row) => rowToRecord(row, claim.owner))
    },
    async heartbeat(owner, until) {
      if (until > 0) {
        await query(
          'heartbeat',
          `INSERT INTO ${T.owners} (owner, alive_until) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET alive_until = excluded.alive_until`,
          [owner, until],
        )
        return
      }
      await query(
        'heartbeat',
        `WITH gone AS (DELETE FROM ${T.owners} WHERE owner = $1) UPDATE ${T.instances} SET owner = NULL WHERE owner = $1`,
        [owner],
      )
    },
    async claimOutbox(claim: OutboxClaimOptions): Promise<OutboxRecord[]> {
      const rows = await query<Record<string, unknown>>(
        'claimOutbox',
        `WITH c AS (SELECT seq FROM ${T.outbox} WHERE available_at <= $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
         UPDATE ${T.outbox} o SET available_at = $3 FROM c WHERE o.seq = c.seq RETURNING o.*`,
        [claim.now, claim.limit, claim.holdUntil],
      )
      return rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map(rowToOutbox)
    },
    async ackOutbox(ids) {
      if (ids.length === 0) return
      await query('ackOutbox', `DELETE FROM ${T.outbox} WHERE id = ANY($1::text[])`, [ids])
    },
  }
  return store
}

const str = (value: string | null | undefined): string => (value == null ? 'null' : JSON.stringify(value))

/**
 * A batch as three JSON arrays (commits, history rows, outbox rows): one parameter each, built from
 * the already-serialized JSON values without escaping them again, and read by PostgreSQL's JSON
 * parser instead of one text array per column.
 */
function batchParams(batch: readonly EncodedCommit[]): [string, string, string] {
  const commits: string[] = []
  const history: string[] = []
  const outbox: string[] = []
  for (const c of batch) {
    const r = c.row
    commits.push(
      `{"id":${str(r.id)},"expected":${c.expectedRevision},"event_id":${str(c.eventId)},"machine":${str(r.machine)},"version":${r.version},"state":${str(r.state)},"status":${str(r.status)},"revision":${r.revision},"data":${r.data},"set_owner":${c.setOwner},"owner":${str(r.owner)},"next_due":${r.next_due ?? 'null'},"created_at":${r.created_at},"updated_at":${r.updated_at}}`,
    )
    for (const h of c.history)
      history.push(
        `{"instance_id":${str(h.instanceId)},"seq":${h.seq},"at":${h.at},"kind":${str(h.kind)},"event":${h.event},"from_state":${str(h.from)},"to_state":${str(h.to)}}`,
      )
    for (const o of c.outbox)
      outbox.push(
        `{"id":${str(o.id)},"instance_id":${str(o.instanceId)},"topic":${str(o.topic)},"key":${str(o.key)},"headers":${o.headers ?? 'null'},"data":${o.data},"created_at":${o.createdAt},"available_at":${c.outboxHoldUntil}}`,
      )
  }
  return [`[${commits.join(',')}]`, `[${history.join(',')}]`, `[${outbox.join(',')}]`]
}

/** Runs a query as a named prepared statement: parsed and planned once per connection. */
function prepared<R extends Pg.QueryResultRow = Pg.QueryResultRow>(
  client: Pg.PoolClient,
  text: string,
  values: unknown[],
) {
  let hash = 2166136261
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619)
  return client.query<R>({ name: `wf_${(hash >>> 0).toString(36)}_${text.length}`, text, values })
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1)
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `postgresStore: ${name}: expected a positive integer, got ${JSON.stringify(value)}`,
    )
  return value
}

function redact(url: string | undefined): string {
  if (!url) return 'the pool'
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string })?.code
  return (
    (typeof code === 'string' &&
      (code.startsWith('08') ||
        code === 'ECONNREFUSED' ||
        code === 'ECONNRESET' ||
        code === '57P01' ||
        code === 'EPIPE')) ||
    /Connection terminated|not queryable/i.test((error as Error)?.message ?? '')
  )
}
