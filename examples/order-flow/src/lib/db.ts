// One small SQL interface over SQLite (embedded mode) and PostgreSQL (distributed mode), so each
// service's queries are written once. Queries use PostgreSQL's `$1` placeholders and the SQL both
// engines share (ON CONFLICT, conditional UPDATE … WHERE, RETURNING is avoided).
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'
import type Pg from 'pg'

export interface Sql {
  readonly dialect: 'sqlite' | 'postgres'
  /** Rows of a SELECT. */
  query<R>(sql: string, params?: readonly unknown[]): Promise<R[]>
  /** Runs a statement; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>
}

export interface Db extends Sql {
  /** Runs a script of several statements (schema creation). */
  exec(script: string): Promise<void>
  close(): Promise<void>
}

const require = createRequire(import.meta.url)

/** `$1, $2` → `?` with the parameters reordered by occurrence (SQLite's anonymous parameters). */
function toSqlite(sql: string, params: readonly unknown[]): { sql: string; args: unknown[] } {
  const args: unknown[] = []
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    args.push(params[Number(n) - 1])
    return '?'
  })
  return { sql: text, args: args.map((v) => (typeof v === 'boolean' ? Number(v) : v)) }
}

export function openSqlite(path: string): Db {
  const Database = require('better-sqlite3') as typeof BetterSqlite3
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('busy_timeout = 5000')
  const statements = new Map<string, BetterSqlite3.Statement>()
  const prepare = (sql: string) => {
    let statement = statements.get(sql)
    if (!statement) {
      statement = db.prepare(sql)
      statements.set(sql, statement)
    }
    return statement
  }
  // better-sqlite3 is synchronous and has one connection: an async transaction must not interleave
  // with other statements, so every call waits its turn.
  let tail: Promise<unknown> = Promise.resolve()
  const turn = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const run = tail.then(fn)
    tail = run.catch(() => undefined)
    return run
  }
  const direct: Sql = {
    dialect: 'sqlite',
    query: async <R>(sql: string, params: readonly unknown[] = []) => {
      const { sql: text, args } = toSqlite(sql, params)
      return prepare(text).all(...args) as R[]
    },
    run: async (sql, params = []) => {
      const { sql: text, args } = toSqlite(sql, params)
      return prepare(text).run(...args).changes
    },
    transaction: (fn) => fn(direct),
  }
  return {
    dialect: 'sqlite',
    query: (sql, params) => turn(() => direct.query(sql, params)),
    run: (sql, params) => turn(() => direct.run(sql, params)),
    transaction: (fn) =>
      turn(async () => {
        db.exec('BEGIN IMMEDIATE')
        try {
          const result = await fn(direct)
          db.exec('COMMIT')
          return result
        } catch (error) {
          db.exec('ROLLBACK')
          throw error
        }
      }),
    exec: (script) => turn(() => void db.exec(script)),
    close: () => turn(() => void db.close()),
  }
}

export function openPostgres(connectionString: string): Db {
  const { Pool } = require('pg') as typeof Pg
  const pool = new Pool({ connectionString, max: 5 })
  // An idle client losing its connection (server restart) must not crash the service.
  pool.on('error', () => undefined)
  const over = (client: Pg.Pool | Pg.PoolClient): Sql => ({
    dialect: 'postgres',
    query: async <R>(sql: string, params: readonly unknown[] = []) =>
      (await client.query(sql, params as unknown[])).rows as R[],
    run: async (sql, params = []) => (await client.query(sql, params as unknown[])).rowCount ?? 0,
    transaction: async (fn) => {
      if (client !== pool) return fn(over(client))
      const connection = await pool.connect()
      try {
        await connection.query('BEGIN')
        const result = await fn(over(connection))
        await connection.query('COMMIT')
        return result
      } catch (error) {
        await connection.query('ROLLBACK').catch(() => undefined)
        throw error
      } finally {
        connection.release()
      }
    },
  })
  const sql = over(pool)
  return {
    ...sql,
    exec: async (script) => {
      await pool.query(script)
    },
    close: () => pool.end(),
  }
}
