/** Without the optional client the store fails with a typed error saying what to install. */
import { describe, expect, it, vi } from 'vitest'
import { postgresStore } from '../src/stores/postgres.js'
import { sqliteStore } from '../src/stores/sqlite.js'

vi.mock('better-sqlite3', () => {
  throw Object.assign(new Error("Cannot find package 'better-sqlite3'"), { code: 'ERR_MODULE_NOT_FOUND' })
})
vi.mock('pg', () => {
  throw Object.assign(new Error("Cannot find package 'pg'"), { code: 'ERR_MODULE_NOT_FOUND' })
})

describe('a missing client', () => {
  it('sqlite: WORKFLOW_CLIENT_MISSING, npm install better-sqlite3', async () => {
    const error = (await sqliteStore(':memory:')
      .open()
      .catch((e: unknown) => e)) as { code: string; message: string }
    expect([error.code, error.message]).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      'the sqlite store needs the better-sqlite3 package: npm install better-sqlite3',
    ])
  })

  it('postgres: WORKFLOW_CLIENT_MISSING, npm install pg', async () => {
    const error = (await postgresStore('postgres://127.0.0.1/x')
      .open()
      .catch((e: unknown) => e)) as { code: string; message: string }
    expect([error.code, error.message]).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      'the postgres store needs the pg package: npm install pg',
    ])
  })
})
