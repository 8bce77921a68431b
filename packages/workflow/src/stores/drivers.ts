/**
 * The optional database clients, imported on first use: a missing install fails with
 * WORKFLOW_CLIENT_MISSING saying what to install; any other failure to load is thrown as it is.
 * `importer` is for tests, which cannot make a real import fail the way a missing package does.
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
