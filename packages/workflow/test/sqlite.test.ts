import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Store } from '../src/index.js'
import { type SqliteDriverName, sqliteStore } from '../src/stores/sqlite.js'
import { storeConformance } from '../src/testing/index.js'

// Told from the version number, not by the code under test: node:sqlite loads without a flag from
// Node.js 22.13 and 23.4.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const nodeSqliteExpected = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13)

const dir = mkdtempSync(join(tmpdir(), 'wf-sqlite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

/** The conformance suite on one driver: every store and every reopened handle on it. */
function conformance(driver: SqliteDriverName) {
  const paths = new WeakMap<Store, string>()
  storeConformance(`sqlite (${driver})`, {
    create() {
      const path = join(dir, `db-${++n}`, 'workflows.db')
      const store = sqliteStore({ path, driver })
      expect(store.driver).toBe(driver)
      paths.set(store, path)
      return store
    },
    reopen(store) {
      const path = paths.get(store) as string
      const again = sqliteStore({ path, driver })
      paths.set(again, path)
      return again
    },
  })
}

describe('better-sqlite3', () => conformance('better-sqlite3'))

describe.skipIf(!nodeSqliteExpected)(
  `node:sqlite${nodeSqliteExpected ? '' : ` (skipped: built in from Node.js 22.13, this is ${process.version})`}`,
  () => conformance('node:sqlite'),
)

describe('sqlite store options', () => {
  it('refuses a missing path, an unknown synchronous mode or driver, and unknown keys, saying what it expected', () => {
    const invalid = (options: unknown) => {
      try {
        sqliteStore(options as string)
      } catch (error) {
        return [(error as { code?: string }).code, (error as Error).message]
      }
      return 'accepted'
    }
    expect(invalid('')).toEqual([
      'WORKFLOW_INVALID_OPTIONS',
      "invalid sqliteStore options: path: expected a database file path (or ':memory:')",
    ])
    expect(invalid({ path: 'x.db', synchronous: 'off' })).toEqual([
      'WORKFLOW_INVALID_OPTIONS',
      "invalid sqliteStore options: synchronous: expected 'full' or 'normal'",
    ])
    expect(invalid({ path: 'x.db', driver: 'sqlite3' })).toEqual([
      'WORKFLOW_INVALID_OPTIONS',
      "invalid sqliteStore options: driver: expected 'auto', 'node:sqlite' or 'better-sqlite3'",
    ])
    expect(invalid({ path: 'x.db', busyTimeout: -1, synchronus: 'normal' })).toEqual([
      'WORKFLOW_INVALID_OPTIONS',
      'invalid sqliteStore options: busyTimeout: expected a whole number of milliseconds, at least 0; (options): unknown option(s) "synchronus"',
    ])
  })

  it('reports a file it cannot open as WORKFLOW_STORE_UNAVAILABLE, on each driver', async () => {
    const drivers: SqliteDriverName[] = nodeSqliteExpected ? ['better-sqlite3', 'node:sqlite'] : ['better-sqlite3']
    for (const driver of drivers) {
      const store = sqliteStore({ path: '/etc/hostname/not-a-dir/workflows.db', driver })
      const error = await store.open().catch((e: unknown) => e)
      expect([driver, (error as { code?: string }).code]).toEqual([driver, 'WORKFLOW_STORE_UNAVAILABLE'])
    }
  })
})
