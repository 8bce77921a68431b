/**
 * A store from one string, for the command line: a SQLite file (`./data/workflows.db`,
 * `sqlite:./data/workflows.db`) or a PostgreSQL URL (`postgres://user@host/db`, with optional
 * `?schema=…&tablePrefix=…` read here and taken out of what pg sees).
 */
import { existsSync } from 'node:fs'
import { WorkflowError } from '../errors.js'
import type { Store } from '../store.js'
import { postgresStore } from './postgres.js'
import { sqliteStore } from './sqlite.js'

export interface StoreFromUrlOptions {
  /** Fail with WORKFLOW_INVALID_OPTIONS when a SQLite file does not exist (instead of creating it). */
  readonly mustExist?: boolean | undefined
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):/

export function storeFromUrl(url: string, options: StoreFromUrlOptions = {}): Store {
  if (typeof url !== 'string' || url.trim() === '')
    throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', 'store URL: expected a SQLite file path or a postgres:// URL')
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase()
  if (scheme === 'postgres' || scheme === 'postgresql') {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', 'store URL: not a valid postgres:// URL')
    }
    const schema = parsed.searchParams.get('schema') ?? undefined
    const tablePrefix = parsed.searchParams.get('tablePrefix') ?? undefined
    parsed.searchParams.delete('schema')
    parsed.searchParams.delete('tablePrefix')
    return postgresStore({ connectionString: parsed.toString(), schema, tablePrefix })
  }
  // One-letter "schemes" are Windows drive letters: a path.
  if (scheme !== undefined && scheme !== 'sqlite')
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `store URL: unsupported scheme ${JSON.stringify(`${scheme}:`)}: expected a SQLite file path, sqlite:PATH or postgres://…`,
    )
  const path = scheme === 'sqlite' ? url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : url
  if (path === '') throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', 'store URL: sqlite: needs a file path')
  if (options.mustExist && !existsSync(path))
    throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', `store URL: no SQLite file at ${path}`)
  return sqliteStore(path)
}
