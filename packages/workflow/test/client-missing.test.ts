/**
 * Without the optional client the store fails with a typed error saying what to install. The import
 * is given to the loaders: a real import cannot be made to fail the way a missing package does (a
 * vi.mock factory's error reaches the caller wrapped in vitest's own).
 */
import { describe, expect, it } from 'vitest'
import { loadPgDriver, loadSqliteDriver } from '../src/stores/drivers.js'

const missing = (name: string) => () =>
  Promise.reject(Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' }))

describe('a missing client', () => {
  it('sqlite: WORKFLOW_CLIENT_MISSING, npm install better-sqlite3', async () => {
    const error = (await loadSqliteDriver(missing('better-sqlite3')).catch((e: unknown) => e)) as {
      code: string
      message: string
    }
    expect([error.code, error.message]).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      'the sqlite store needs the better-sqlite3 package: npm install better-sqlite3',
    ])
  })

  it('postgres: WORKFLOW_CLIENT_MISSING, npm install pg', async () => {
    const error = (await loadPgDriver(missing('pg')).catch((e: unknown) => e)) as { code: string; message: string }
    expect([error.code, error.message]).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      'the postgres store needs the pg package: npm install pg',
    ])
  })

  it('loads the installed clients, and throws a broken install as it is', async () => {
    expect(typeof (await loadSqliteDriver())).toBe('function')
    expect(typeof (await loadPgDriver()).Pool).toBe('function')
    const broken = await loadPgDriver(missing('split2')).catch((e: unknown) => e)
    expect((broken as Error).message).toBe("Cannot find package 'split2'")
  })
})
