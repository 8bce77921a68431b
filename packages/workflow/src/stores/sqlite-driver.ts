/**
 * The SQLite driver seam: the few calls the SQLite store makes (exec, prepare → run/get/all, an
 * immediate transaction, close), over better-sqlite3 or Node's built-in node:sqlite. Statements are
 * the drivers' own objects (both have run/get/all with the same arguments and results), so the hot
 * path pays no wrapper; only opening, transactions and closing differ.
 */
import type BetterSqlite3 from 'better-sqlite3'
import { WorkflowError } from '../errors.js'
import { loadNodeSqlite, loadSqliteDriver, NODE_SQLITE_VERSIONS, type NodeSqliteModule } from './drivers.js'

/** The driver a SQLite store runs on. */
export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3'

/** What `sqliteStore({ driver })` accepts: `'auto'` is node:sqlite where Node.js has it, else better-sqlite3. */
export type SqliteDriverChoice = 'auto' | SqliteDriverName

/** A value both drivers bind the same way (neither binds booleans or undefined everywhere). */
export type SqliteValue = string | number | bigint | null

export interface SqliteStatement {
  run(...params: SqliteValue[] | [Readonly<Record<string, SqliteValue>>]): {
    changes: number | bigint
    lastInsertRowid: number | bigint
  }
  /** A row (with a null prototype on node:sqlite), or undefined. */
  get(...params: SqliteValue[] | [Readonly<Record<string, SqliteValue>>]): unknown
  all(...params: SqliteValue[] | [Readonly<Record<string, SqliteValue>>]): unknown[]
}

export interface SqliteDatabase {
  readonly driver: SqliteDriverName
  exec(sql: string): void
  /**
   * Named parameters are written `@name` and given as an object with the bare names: exactly the
   * statement's names (node:sqlite rejects an unknown one, better-sqlite3 a missing one).
   */
  prepare(sql: string): SqliteStatement
  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction: commits when it returns, rolls back when it throws.
   * Immediate, so a transaction that reads before it writes waits for the write lock (busy timeout)
   * up front instead of failing at once when another connection wrote in between.
   */
  transaction<T>(fn: () => T): T
  close(): void
}

/**
 * The driver `choice` means on this Node.js. Synchronous: node:sqlite is built in, and better-sqlite3
 * is only loaded (and found missing) when the store opens.
 */
export function resolveSqliteDriver(choice: SqliteDriverChoice): SqliteDriverName {
  if (choice === 'better-sqlite3') return choice
  if (loadNodeSqlite()) return 'node:sqlite'
  if (choice === 'auto') return 'better-sqlite3'
  throw new WorkflowError(
    'WORKFLOW_CLIENT_MISSING',
    `sqliteStore: driver 'node:sqlite' needs ${NODE_SQLITE_VERSIONS}, where it is built in; this is Node.js ${process.version}: use driver 'better-sqlite3' (npm install better-sqlite3) or 'auto'`,
  )
}

/**
 * Opens `path` with `driver`. `chosen` says whether the app named the driver or 'auto' fell back
 * to better-sqlite3, which changes what a missing better-sqlite3 should tell it to do. `loadBetter`
 * is for tests, which cannot uninstall better-sqlite3.
 */
export async function openSqliteDatabase(
  driver: SqliteDriverName,
  path: string,
  chosen: 'named' | 'auto',
  loadBetter: () => Promise<typeof BetterSqlite3> = loadSqliteDriver,
): Promise<SqliteDatabase> {
  if (driver === 'node:sqlite') return nodeSqlite(loadNodeSqlite() as NodeSqliteModule, path)
  const Database = await loadBetter().catch((error: unknown) => {
    if (chosen === 'auto' && WorkflowError.is(error, 'WORKFLOW_CLIENT_MISSING')) {
      throw new WorkflowError(
        'WORKFLOW_CLIENT_MISSING',
        `${error.message}, or run on ${NODE_SQLITE_VERSIONS}, whose built-in node:sqlite needs no install (this is Node.js ${process.version})`,
        { cause: error.cause },
      )
    }
    throw error
  })
  let database: InstanceType<typeof Database>
  try {
    database = new Database(path)
  } catch (error) {
    const message = (error as Error)?.message ?? String(error)
    if (/bindings|better_sqlite3\.node|NODE_MODULE_VERSION/i.test(message)) {
      throw new WorkflowError(
        'WORKFLOW_CLIENT_MISSING',
        `better-sqlite3 is installed but its native module cannot be loaded (${message}): allow its install script (npm install-scripts approve better-sqlite3, or "allowScripts" in package.json) and run npm rebuild better-sqlite3`,
        { cause: error },
      )
    }
    throw error
  }
  return {
    driver,
    exec: (sql) => {
      database.exec(sql)
    },
    prepare: (sql) => database.prepare(sql) as unknown as SqliteStatement,
    transaction: (fn) => database.transaction(fn).immediate(),
    close: () => {
      database.close()
    },
  }
}

function nodeSqlite(module: NodeSqliteModule, path: string): SqliteDatabase {
  const database = new module.DatabaseSync(path)
  const begin = database.prepare('BEGIN IMMEDIATE')
  const commit = database.prepare('COMMIT')
  const rollback = database.prepare('ROLLBACK')
  return {
    driver: 'node:sqlite',
    exec: (sql) => {
      database.exec(sql)
    },
    prepare: (sql) => database.prepare(sql) as SqliteStatement,
    transaction<T>(fn: () => T): T {
      begin.run()
      let result: T
      try {
        result = fn()
        commit.run()
      } catch (error) {
        // SQLite ends the transaction itself on some errors (a full disk, an interrupt): roll back
        // only one still open. Node before 22.16 cannot tell (no isTransaction), so there a
        // "no transaction is active" error from ROLLBACK is expected and dropped; the first error
        // is the one that matters.
        if (database.isTransaction !== false) {
          try {
            rollback.run()
          } catch {}
        }
        throw error
      }
      return result
    },
    close: () => {
      database.close()
    },
  }
}
