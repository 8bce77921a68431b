/**
 * The optional database clients, imported on first use: a missing install fails with
 * WORKFLOW_CLIENT_MISSING saying what to install; any other failure to load is thrown as it is.
 * `importer` is for tests, which cannot make a real import fail the way a missing package does.
 * Also node:sqlite, built into Node.js from 22.13 (and 23.4) without a flag.
 */
import { loadPeer } from '@backplane/internal'
import type BetterSqlite3 from 'better-sqlite3'
import type * as Pg from 'pg'
import { WorkflowError } from '../errors.js'

export async function loadSqliteDriver(
  importer: () => Promise<unknown> = () => import('better-sqlite3'),
): Promise<typeof BetterSqlite3> {
  const module = await loadPeer<{ default?: typeof BetterSqlite3 }>(
    'better-sqlite3',
    importer,
    (cause) =>
      new WorkflowError(
        'WORKFLOW_CLIENT_MISSING',
        'the sqlite store needs the better-sqlite3 package: npm install better-sqlite3',
        { cause },
      ),
  )
  return (module.default ?? module) as typeof BetterSqlite3
}

export async function loadPgDriver(importer: () => Promise<unknown> = () => import('pg')): Promise<typeof Pg> {
  const module = await loadPeer<{ default?: typeof Pg } & typeof Pg>(
    'pg',
    importer,
    (cause) =>
      new WorkflowError('WORKFLOW_CLIENT_MISSING', 'the postgres store needs the pg package: npm install pg', {
        cause,
      }),
  )
  return (module.default ?? module) as typeof Pg
}

/** The part of node:sqlite the SQLite store uses (declared here: the project's @types/node is Node 20's). */
export interface NodeSqliteModule {
  readonly DatabaseSync: new (path: string) => NodeSqliteDatabase
}

export interface NodeSqliteDatabase {
  exec(sql: string): void
  prepare(sql: string): NodeSqliteStatement
  close(): void
  /** Since Node 22.16: absent before. */
  readonly isTransaction?: boolean
}

export interface NodeSqliteStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint }
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
}

/** The Node.js versions whose node:sqlite loads without a flag, for error messages. */
export const NODE_SQLITE_VERSIONS = 'Node.js 22.13 or later (23.4 or later on 23)'

const isSqliteExperimentalWarning = (warning: unknown, rest: unknown[]): boolean => {
  const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type
  const text = warning instanceof Error ? warning.message : String(warning)
  return type === 'ExperimentalWarning' && text.startsWith('SQLite ')
}

/**
 * node:sqlite, or undefined where this Node.js does not have it without a flag (Node 20; 22 before
 * 22.13). Loaded with process.getBuiltinModule (Node 20.16+/22.3+), which is synchronous: every Node
 * that has node:sqlite unflagged has it.
 *
 * Node 22 emits "ExperimentalWarning: SQLite is an experimental feature" when the module is first
 * loaded (Node 24 does not). The store picks node:sqlite by itself, so that warning would tell the
 * app about a choice it did not make and cannot act on: it is dropped, and only it. The swap of
 * process.emitWarning lasts for this one synchronous call, so no other code runs while it is in
 * place; every other warning passes through, and the original is put back before returning.
 */
export function loadNodeSqlite(): NodeSqliteModule | undefined {
  if (typeof process.getBuiltinModule !== 'function') return undefined
  const emitWarning = process.emitWarning
  process.emitWarning = function filtered(this: unknown, warning: unknown, ...rest: unknown[]) {
    if (isSqliteExperimentalWarning(warning, rest)) return
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest)
  } as typeof process.emitWarning
  try {
    return process.getBuiltinModule('node:sqlite') as NodeSqliteModule | undefined
  } finally {
    process.emitWarning = emitWarning
  }
}
