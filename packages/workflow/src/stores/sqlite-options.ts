/** sqliteStore's options: their type, their schema, and the store type it returns. */
import { parseWith } from '@backplane/internal'
import { z } from 'zod'
import { WorkflowError } from '../errors.js'
import type { Store } from '../store.js'
import type { SqliteDriverChoice, SqliteDriverName } from './sqlite-driver.js'

export interface SqliteStoreOptions {
  /** Database file (its directory is created when missing); `':memory:'` for a throwaway database. */
  readonly path: string
  /**
   * `'full'` (default): every commit is on disk (fsync of the WAL) before it resolves, so it survives
   * a power loss. `'normal'`: it survives a crash of the process but the last commits may be lost
   * with the machine. Group commit makes `'full'` cheap under load.
   */
  readonly synchronous?: 'full' | 'normal' | undefined
  /** Batch the commits that arrive together into one SQLite transaction (one fsync). Default true. */
  readonly groupCommit?: boolean | undefined
  /** Most commits in one batch. Default 1,000. */
  readonly maxBatch?: number | undefined
  /** How long to wait for a lock held by another connection (ms). Default 5,000. */
  readonly busyTimeout?: number | undefined
  /**
   * `'auto'` (default): Node's built-in node:sqlite where it loads without a flag (Node.js 22.13+),
   * else better-sqlite3 (Node 20). Both write the same file format, with the same durability.
   */
  readonly driver?: SqliteDriverChoice | undefined
}

/** A SQLite store, and the driver it runs on. */
export interface SqliteStore extends Store {
  readonly driver: SqliteDriverName
}

const optionsSchema = z.strictObject({
  path: z
    .string("expected a database file path (or ':memory:')")
    .min(1, "expected a database file path (or ':memory:')"),
  synchronous: z.enum(['full', 'normal'], "expected 'full' or 'normal'").optional(),
  groupCommit: z.boolean('expected true or false').optional(),
  maxBatch: z.number().int().min(1, 'expected a whole number, at least 1').optional(),
  busyTimeout: z.number().int().min(0, 'expected a whole number of milliseconds, at least 0').optional(),
  driver: z
    .enum(['auto', 'node:sqlite', 'better-sqlite3'], "expected 'auto', 'node:sqlite' or 'better-sqlite3'")
    .optional(),
})

/** The options as given (a path alone, or the object), checked: WORKFLOW_INVALID_OPTIONS names each problem. */
export function parseSqliteOptions(pathOrOptions: string | SqliteStoreOptions): z.output<typeof optionsSchema> {
  return parseWith(
    optionsSchema,
    typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions,
    (message, details) => new WorkflowError('WORKFLOW_INVALID_OPTIONS', message, { details }),
    'sqliteStore',
  )
}
