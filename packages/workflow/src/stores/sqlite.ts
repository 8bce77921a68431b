import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { storeUnavailable, WorkflowError } from '../errors.js'
import type {
  ClaimOptions,
  Commit,
  CommitResult,
  CountFilter,
  HistoryRecord,
  InstanceCount,
  InstanceRecord,
  ListFilter,
  OutboxClaimOptions,
  OutboxRecord,
} from '../store.js'
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
import { sqliteFlow } from './flow-sqlite.js'
import { sqliteSchedules } from './schedules-sqlite.js'
import {
  openSqliteDatabase,
  resolveSqliteDriver,
  type SqliteDatabase,
  type SqliteDriverChoice,
  type SqliteDriverName,
  type SqliteStatement,
  type SqliteValue,
} from './sqlite-driver.js'
import { parseSqliteOptions, type SqliteStore, type SqliteStoreOptions } from './sqlite-options.js'

export type { SqliteDriverChoice, SqliteDriverName, SqliteStore, SqliteStoreOptions }

const SCHEMA_VERSION = 1
const SCHEMA = `
CREATE TABLE IF NOT EXISTS wf_instances (
  id TEXT PRIMARY KEY,
  machine TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  status TEXT NOT NULL,
  revision INTEGER NOT NULL,
  data TEXT NOT NULL,
  owner TEXT,
  next_due INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  history_head INTEGER
);
CREATE INDEX IF NOT EXISTS wf_instances_due ON wf_instances (next_due) WHERE next_due IS NOT NULL;
CREATE INDEX IF NOT EXISTS wf_instances_list ON wf_instances (machine, status);
-- The history is an append-only log: each row points to the instance's previous row and the
-- instance row to its last one. Appends stay sequential (no per-instance index to update at
-- random), which is most of what a commit costs; history(id) walks the chain back.
CREATE TABLE IF NOT EXISTS wf_history (
  instance_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  event TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  prev INTEGER
);
CREATE TABLE IF NOT EXISTS wf_events (
  instance_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  PRIMARY KEY (instance_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wf_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  instance_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  key TEXT,
  headers TEXT,
  data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  available_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_outbox_ready ON wf_outbox (available_at);
CREATE TABLE IF NOT EXISTS wf_owners (
  owner TEXT PRIMARY KEY,
  alive_until INTEGER NOT NULL
);
`

const claimSql = (order: string) => `SELECT ${INSTANCE_COLUMNS} FROM wf_instances i
  WHERE next_due IS NOT NULL AND next_due <= @due
    AND (@takeover = 1 OR owner IS NULL OR (owner = @owner AND @own = 1)
         OR (owner <> @owner AND NOT EXISTS (SELECT 1 FROM wf_owners o WHERE o.owner = i.owner AND o.alive_until > @now)))
    ${order} LIMIT @limit`

interface InstanceRow {
  data: string
  owner: string | null
}

const unavailable = (what: string, error: unknown): WorkflowError => storeUnavailable('sqlite', what, error)

function parseRecord(row: InstanceRow): InstanceRecord {
  return rowToRecord(row as unknown as Record<string, unknown>)
}

/**
 * The embedded store: one SQLite file in WAL mode, driven by one engine process (other processes,
 * such as the CLI, may read it and commit events; the driving engine picks their work up within
 * `pollInterval`). Concurrent commits are grouped into one transaction.
 */
export function sqliteStore(pathOrOptions: string | SqliteStoreOptions): SqliteStore {
  const options = parseSqliteOptions(pathOrOptions)
  const groupCommit = options.groupCommit ?? true
  const maxBatch = options.maxBatch ?? 1000
  const driver = resolveSqliteDriver(options.driver ?? 'auto')
  let db: SqliteDatabase | undefined
  let opening: Promise<void> | undefined
  let statements: ReturnType<typeof prepare> | undefined
  let queue: PendingCommit[] = []
  let flushScheduled = false

  function prepare(database: SqliteDatabase) {
    const s = (sql: string): SqliteStatement => database.prepare(sql)
    return {
      // Hot statements bind positionally: better-sqlite3 binds named parameters from an object at
      // about twice the cost per commit.
      insert: s(
        `INSERT OR IGNORE INTO wf_instances (id, machine, version, state, status, revision, data, owner, next_due, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // Compare-and-set on the revision; the owner column is written only when the commit sets it,
      // the history head only when the commit appended history.
      update: s(
        `UPDATE wf_instances SET version = ?, state = ?, status = ?, revision = ?, data = ?,
           owner = CASE WHEN ? THEN ? ELSE owner END, next_due = ?, updated_at = ?, history_head = coalesce(?, history_head)
         WHERE id = ? AND revision = ?`,
      ),
      hasEvent: s('SELECT 1 AS x FROM wf_events WHERE instance_id = ? AND event_id = ?'),
      insertEvent: s('INSERT INTO wf_events (instance_id, event_id) VALUES (?, ?)'),
      insertHistory: s(
        `INSERT INTO wf_history (instance_id, seq, at, kind, event, from_state, to_state, prev)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertHistoryCas: s(
        `INSERT INTO wf_history (instance_id, seq, at, kind, event, from_state, to_state, prev)
         SELECT ?, ?, ?, ?, ?, ?, ?, history_head FROM wf_instances WHERE id = ? AND revision = ?`,
      ),
      setHead: s('UPDATE wf_instances SET history_head = ? WHERE id = ?'),
      insertOutbox: s(
        'INSERT INTO wf_outbox (id, instance_id, topic, key, headers, data, created_at, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      load: s(`SELECT ${INSTANCE_COLUMNS} FROM wf_instances WHERE id = ?`),
      history: s(
        `WITH RECURSIVE chain (r) AS (
           SELECT history_head FROM wf_instances WHERE id = ?
           UNION ALL SELECT h.prev FROM wf_history h JOIN chain ON h.rowid = chain.r WHERE h.prev IS NOT NULL)
         SELECT h.* FROM chain JOIN wf_history h ON h.rowid = chain.r ORDER BY h.seq`,
      ),
      claimSelect: s(claimSql('ORDER BY next_due')),
      claimSelectById: s(claimSql('AND id > @after ORDER BY id')),
      setOwner: s('UPDATE wf_instances SET owner = ? WHERE id = ?'),
      heartbeat: s(
        'INSERT INTO wf_owners (owner, alive_until) VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET alive_until = excluded.alive_until',
      ),
      dropOwner: s('DELETE FROM wf_owners WHERE owner = ?'),
      releaseOwner: s('UPDATE wf_instances SET owner = NULL WHERE owner = ?'),
      outboxSelect: s('SELECT * FROM wf_outbox WHERE available_at <= ? ORDER BY seq LIMIT ?'),
      outboxHold: s('UPDATE wf_outbox SET available_at = ? WHERE id = ?'),
      outboxDelete: s('DELETE FROM wf_outbox WHERE id = ?'),
    }
  }

  const requireOpen = (): { database: SqliteDatabase; st: NonNullable<typeof statements> } => {
    if (!db || !statements)
      throw new WorkflowError(
        'WORKFLOW_STORE_UNAVAILABLE',
        'sqlite store: not open (open() it, or hand it to createEngine)',
      )
    return { database: db, st: statements }
  }

  /** Applies one commit inside the current transaction. */
  const applyOne = (st: NonNullable<typeof statements>, c: EncodedCommit): CommitResult => {
    const r = c.row
    let head: number | bigint | null = null
    if (c.expectedRevision === 0) {
      const created = st.insert.run(
        r.id,
        r.machine,
        r.version,
        r.state,
        r.status,
        r.revision,
        r.data,
        r.owner,
        r.next_due,
        r.created_at,
        r.updated_at,
      )
      if (created.changes === 0) return { status: 'exists' }
      for (const h of c.history)
        head = st.insertHistory.run(r.id, h.seq, h.at, h.kind, h.event, h.from, h.to, head).lastInsertRowid
      if (head !== null) st.setHead.run(head, r.id)
    } else {
      if (c.eventId !== undefined && st.hasEvent.get(r.id, c.eventId) !== undefined) return { status: 'duplicate' }
      const [first, ...rest] = c.history
      if (first !== undefined) {
        // The compare-and-set is in the first history insert: it copies the head only from a row
        // still at the expected revision, so a stale commit inserts nothing and writes nothing.
        const inserted = st.insertHistoryCas.run(
          r.id,
          first.seq,
          first.at,
          first.kind,
          first.event,
          first.from,
          first.to,
          r.id,
          c.expectedRevision,
        )
        if (inserted.changes === 0) return { status: 'conflict' }
        head = inserted.lastInsertRowid
        for (const h of rest)
          head = st.insertHistory.run(r.id, h.seq, h.at, h.kind, h.event, h.from, h.to, head).lastInsertRowid
      }
      const updated = st.update.run(
        r.version,
        r.state,
        r.status,
        r.revision,
        r.data,
        c.setOwner ? 1 : 0,
        r.owner,
        r.next_due,
        r.updated_at,
        head,
        r.id,
        c.expectedRevision,
      )
      if (updated.changes === 0) {
        if (head === null) return { status: 'conflict' }
        throw new Error(`instance ${r.id} changed inside its own transaction`)
      }
    }
    if (c.eventId !== undefined) st.insertEvent.run(r.id, c.eventId)
    for (const o of c.outbox)
      st.insertOutbox.run(o.id, o.instanceId, o.topic, o.key, o.headers, o.data, o.createdAt, c.outboxHoldUntil)
    return { status: 'committed' }
  }

  const runBatch = (batch: PendingCommit[]) => {
    let database: SqliteDatabase
    let st: NonNullable<typeof statements>
    try {
      ;({ database, st } = requireOpen())
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    try {
      const results = database.transaction(() => batch.map((p) => applyOne(st, p.encoded)))
      batch.forEach((p, i) => {
        p.resolve(results[i] as CommitResult)
      })
    } catch (error) {
      if (batch.length === 1) {
        ;(batch[0] as PendingCommit).reject(unavailable('commit', error))
        return
      }
      // One bad commit must not fail the others: apply them one by one.
      for (const p of batch) {
        try {
          p.resolve(database.transaction(() => applyOne(st, p.encoded)))
        } catch (single) {
          p.reject(unavailable('commit', single))
        }
      }
    }
  }

  const flush = () => {
    flushScheduled = false
    while (queue.length > 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch)
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch)
      runBatch(batch)
    }
  }

  const store: SqliteStore = {
    // Schedules (optional Store methods): their own table, created on first use.
    ...sqliteSchedules(() => requireOpen().database),
    // Flow control (optional Store methods): the same.
    ...sqliteFlow(() => requireOpen().database),
    kind: 'sqlite',
    driver,
    shared: false,
    open() {
      if (db) return Promise.resolve()
      if (!opening) {
        opening = (async () => {
          try {
            if (options.path !== ':memory:' && !options.path.startsWith('file:'))
              mkdirSync(dirname(options.path), { recursive: true })
            const database = await openSqliteDatabase(driver, options.path, options.driver ? 'named' : 'auto')
            try {
              // The busy timeout first: switching to WAL takes a lock another connection may hold.
              database.exec(`PRAGMA busy_timeout = ${options.busyTimeout ?? 5000}`)
              database.exec('PRAGMA journal_mode = WAL')
              database.exec(`PRAGMA synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
              // A 16 MB page cache: better-sqlite3's build default, set here so node:sqlite (2 MB by
              // default) runs with the same.
              database.exec('PRAGMA cache_size = -16000')
              const version = Number(
                (database.prepare('PRAGMA user_version').get() as { user_version: number }).user_version,
              )
              if (version !== 0 && version !== SCHEMA_VERSION) {
                throw new WorkflowError(
                  'WORKFLOW_STORE_UNAVAILABLE',
                  `sqlite store: ${options.path} has schema version ${version}; this version of @backplane/workflow reads version ${SCHEMA_VERSION}`,
                )
              }
              database.exec(SCHEMA)
              database.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
              statements = prepare(database)
            } catch (error) {
              database.close()
              throw error
            }
            db = database
          } catch (error) {
            throw unavailable(`opening ${options.path}`, error)
          }
        })().finally(() => {
          opening = undefined
        })
      }
      return opening
    },
    async close() {
      if (opening) await opening.catch(() => undefined)
      flush()
      const database = db
      db = undefined
      statements = undefined
      database?.close()
    },
    commit(commit: Commit): Promise<CommitResult> {
      let encoded: EncodedCommit
      try {
        encoded = encodeCommit(commit)
      } catch (error) {
        return Promise.reject(error)
      }
      if (!groupCommit) {
        try {
          const { database, st } = requireOpen()
          return Promise.resolve(database.transaction(() => applyOne(st, encoded)))
        } catch (error) {
          return Promise.reject(unavailable('commit', error))
        }
      }
      return new Promise((resolve, reject) => {
        queue.push({ encoded, resolve, reject })
        if (!flushScheduled) {
          flushScheduled = true
          setImmediate(flush)
        }
      })
    },
    async load(id) {
      try {
        const row = requireOpen().st.load.get(id) as InstanceRow | undefined
        return row ? parseRecord(row) : undefined
      } catch (error) {
        throw unavailable('load', error)
      }
    },
    async list(filter: ListFilter) {
      try {
        const { database } = requireOpen()
        const { where, params } = listConditions(filter, () => '?')
        const rows = database
          .prepare(`SELECT ${INSTANCE_COLUMNS} FROM wf_instances ${where} ORDER BY id LIMIT ?`)
          .all(...(params as SqliteValue[])) as InstanceRow[]
        return rows.map(parseRecord)
      } catch (error) {
        throw unavailable('list', error)
      }
    },
    async countInstances(filter: CountFilter): Promise<InstanceCount[]> {
      try {
        const { database } = requireOpen()
        const { sql, params } = countQuery('wf_instances', filter, () => '?')
        return database.prepare(sql).all(...(params as SqliteValue[])) as unknown as InstanceCount[]
      } catch (error) {
        throw unavailable('countInstances', error)
      }
    },
    async history(id): Promise<HistoryRecord[]> {
      try {
        return (requireOpen().st.history.all(id) as Record<string, unknown>[]).map(rowToHistory)
      } catch (error) {
        throw unavailable('history', error)
      }
    },
    async hasEvent(instanceId, eventId) {
      try {
        return requireOpen().st.hasEvent.get(instanceId, eventId) !== undefined
      } catch (error) {
        throw unavailable('hasEvent', error)
      }
    },
    async claim(claim: ClaimOptions) {
      try {
        const { database, st } = requireOpen()
        return database.transaction(() => {
          const params = {
            due: claim.dueBefore,
            takeover: claim.takeover ? 1 : 0,
            owner: claim.owner,
            own: claim.includeOwn ? 1 : 0,
            now: claim.now,
            limit: claim.limit,
          }
          // Exactly the statement's parameters: node:sqlite rejects a name the statement lacks.
          const rows = (
            claim.afterId === undefined
              ? st.claimSelect.all(params)
              : st.claimSelectById.all({ ...params, after: claim.afterId })
          ) as (InstanceRow & { id: string })[]
          for (const row of rows) st.setOwner.run(claim.owner, row.id)
          return rows.map((row) => rowToRecord(row as unknown as Record<string, unknown>, claim.owner))
        })
      } catch (error) {
        throw unavailable('claim', error)
      }
    },
    async heartbeat(owner, until) {
      try {
        const { database, st } = requireOpen()
        if (until > 0) st.heartbeat.run(owner, until)
        else
          database.transaction(() => {
            st.dropOwner.run(owner)
            st.releaseOwner.run(owner)
          })
      } catch (error) {
        throw unavailable('heartbeat', error)
      }
    },
    async claimOutbox(claim: OutboxClaimOptions): Promise<OutboxRecord[]> {
      try {
        const { database, st } = requireOpen()
        return database.transaction(() => {
          const rows = st.outboxSelect.all(claim.now, claim.limit) as Record<string, unknown>[]
          for (const row of rows) st.outboxHold.run(claim.holdUntil, row.id as string)
          return rows.map(rowToOutbox)
        })
      } catch (error) {
        throw unavailable('claimOutbox', error)
      }
    },
    async ackOutbox(ids) {
      try {
        const { database, st } = requireOpen()
        database.transaction(() => {
          for (const id of ids) st.outboxDelete.run(id)
        })
      } catch (error) {
        throw unavailable('ackOutbox', error)
      }
    },
  }
  return store
}
