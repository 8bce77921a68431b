/**
 * The two SQLite drivers: which one 'auto' picks, what a missing one says, that both read and write
 * the same file, that a failed transaction leaves nothing behind on either, and that node:sqlite's
 * ExperimentalWarning (Node 22) is dropped while loading it and no other warning is.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InstanceRecord } from '../src/store-api.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { openSqliteDatabase, type SqliteDriverName } from '../src/stores/sqlite-driver.js'
import { commitOf, record, strip } from '../src/testing/suite.js'
import { packageDir, requireBuild } from './helpers/runner.js'

// Told from the version number, not by the code under test: node:sqlite loads without a flag from
// Node.js 22.13 and 23.4.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const nodeSqliteExpected = major > 23 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13)
const skipReason = nodeSqliteExpected
  ? ''
  : ` (skipped: node:sqlite is built in from Node.js 22.13, this is ${process.version})`
const drivers: SqliteDriverName[] = nodeSqliteExpected ? ['better-sqlite3', 'node:sqlite'] : ['better-sqlite3']

const dir = mkdtempSync(join(tmpdir(), 'wf-sqlite-driver-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const freshPath = () => join(dir, `db-${++n}`, 'workflows.db')

const errorOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return [(error as { code?: string }).code, (error as Error).message]
  }
  return 'no error'
}

describe('choosing the driver', () => {
  it(`'auto' (the default) picks ${nodeSqliteExpected ? 'node:sqlite on this Node' : 'better-sqlite3 on this Node'}`, () => {
    const expected = nodeSqliteExpected ? 'node:sqlite' : 'better-sqlite3'
    expect(sqliteStore(freshPath()).driver).toBe(expected)
    expect(sqliteStore({ path: freshPath(), driver: 'auto' }).driver).toBe(expected)
    expect(sqliteStore({ path: freshPath(), driver: 'better-sqlite3' }).driver).toBe('better-sqlite3')
  })

  it.skipIf(nodeSqliteExpected)(
    `'node:sqlite' where Node has none: WORKFLOW_CLIENT_MISSING naming the Node versions${nodeSqliteExpected ? ' (skipped: this Node has it)' : ''}`,
    () => {
      expect(errorOf(() => sqliteStore({ path: freshPath(), driver: 'node:sqlite' }))).toEqual([
        'WORKFLOW_CLIENT_MISSING',
        `sqliteStore: driver 'node:sqlite' needs Node.js 22.13 or later (23.4 or later on 23), where it is built in; this is Node.js ${process.version}: use driver 'better-sqlite3' (npm install better-sqlite3) or 'auto'`,
      ])
    },
  )

  it.skipIf(!nodeSqliteExpected)(`'node:sqlite' where Node has it${skipReason}`, async () => {
    const store = sqliteStore({ path: freshPath(), driver: 'node:sqlite' })
    expect(store.driver).toBe('node:sqlite')
    await store.open()
    await store.commit(commitOf(record('i1', 1), 0))
    expect(strip(await store.load('i1'))).toEqual(record('i1', 1))
    await store.close()
  })

  it('a missing better-sqlite3: the install it needs, and the Node versions that need none when it was picked by auto', async () => {
    const missing = () =>
      Promise.reject(Object.assign(new Error("Cannot find package 'better-sqlite3'"), { code: 'ERR_MODULE_NOT_FOUND' }))
    const { loadSqliteDriver } = await import('../src/stores/drivers.js')
    const load = () => loadSqliteDriver(missing)
    const failure = async (chosen: 'named' | 'auto') => {
      const error = await openSqliteDatabase('better-sqlite3', freshPath(), chosen, load).catch((e: unknown) => e)
      return [(error as { code?: string }).code, (error as Error).message]
    }
    expect(await failure('named')).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      'the sqlite store needs the better-sqlite3 package: npm install better-sqlite3',
    ])
    expect(await failure('auto')).toEqual([
      'WORKFLOW_CLIENT_MISSING',
      `the sqlite store needs the better-sqlite3 package: npm install better-sqlite3, or run on Node.js 22.13 or later (23.4 or later on 23), whose built-in node:sqlite needs no install (this is Node.js ${process.version})`,
    ])
  })
})

describe.each(drivers)('the %s driver', (driver) => {
  it('rolls a failed transaction back whole and stays usable', async () => {
    const db = await openSqliteDatabase(driver, join(dir, `tx-${++n}.db`), 'named')
    try {
      db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)')
      const insert = db.prepare('INSERT INTO t (k) VALUES (?)')
      expect(() =>
        db.transaction(() => {
          insert.run('a')
          insert.run('a')
        }),
      ).toThrow(/UNIQUE/)
      expect(db.transaction(() => Number(insert.run('b').changes))).toBe(1)
      expect(
        db
          .prepare('SELECT k FROM t ORDER BY k')
          .all()
          .map((row) => (row as { k: string }).k),
      ).toEqual(['b'])
    } finally {
      db.close()
    }
  })
})

describe.skipIf(!nodeSqliteExpected)(`one file, both drivers${skipReason}`, () => {
  const other = (driver: SqliteDriverName): SqliteDriverName =>
    driver === 'node:sqlite' ? 'better-sqlite3' : 'node:sqlite'

  it.each(drivers)('a database written with %s is read and written by the other', async (first) => {
    const path = freshPath()
    const timer = { id: 't', delay: '1h', deadline: Date.UTC(2030, 0, 2) }
    const writer = sqliteStore({ path, driver: first })
    await writer.open()
    await writer.commit(commitOf(record('i1', 1), 0))
    await writer.commit(
      commitOf(record('i1', 2, { state: 'b', timers: [timer] }), 1, {
        eventId: 'e-1',
        outbox: [{ id: 'i1/2/0', instanceId: 'i1', topic: 'orders', key: 'i1', data: { n: 2 }, createdAt: 1 }],
      }),
    )
    const written = {
      load: strip(await writer.load('i1')),
      history: await writer.history('i1'),
      list: (await writer.list({ machine: 'm' })).map(strip),
    }
    await writer.close()

    const reader = sqliteStore({ path, driver: other(first) })
    await reader.open()
    expect(reader.driver).toBe(other(first))
    expect({
      load: strip(await reader.load('i1')),
      history: await reader.history('i1'),
      list: (await reader.list({ machine: 'm' })).map(strip),
    }).toEqual(written)
    expect(written.load).toMatchObject({ state: 'b', revision: 2, timers: [timer] })
    expect(await reader.hasEvent('i1', 'e-1')).toBe(true)
    expect(
      (await reader.claimOutbox({ now: Date.now(), limit: 10, holdUntil: Date.now() + 1000 })).map((m) => m.id),
    ).toEqual(['i1/2/0'])
    expect(await reader.commit(commitOf(record('i1', 3, { state: 'c' }), 2, { eventId: 'e-1' }))).toEqual({
      status: 'duplicate',
    })
    expect(await reader.commit(commitOf(record('i1', 3, { state: 'c' }), 2, { eventId: 'e-2' }))).toEqual({
      status: 'committed',
    })
    await reader.close()

    const again = sqliteStore({ path, driver: first })
    await again.open()
    const loaded = (await again.load('i1')) as InstanceRecord
    expect([loaded.state, loaded.revision, (await again.history('i1')).map((h) => h.seq)]).toEqual(['c', 3, [1, 2, 3]])
    await again.close()
  })
})

describe("node:sqlite's ExperimentalWarning", () => {
  // Child processes: a warning is emitted once per process, and this one may have loaded node:sqlite already.
  const run = (script: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' })
  const warns =
    nodeSqliteExpected && /ExperimentalWarning: SQLite/.test(run("process.getBuiltinModule('node:sqlite')").stderr)

  beforeAll(() => requireBuild())

  it.skipIf(!warns)(
    `is dropped while the store loads node:sqlite, and only it${warns ? '' : ` (skipped: Node.js ${process.version} does not warn)`}`,
    () => {
      const result = run(`
        import { sqliteStore } from '@backplane/workflow/sqlite'
        const before = process.emitWarning
        const store = sqliteStore({ path: ':memory:' })
        await store.open()
        await store.close()
        process.emitWarning('another experimental feature', 'ExperimentalWarning')
        console.log(store.driver, process.emitWarning === before)
      `)
      expect(result.stdout.trim()).toBe('node:sqlite true')
      expect(result.stderr).not.toMatch(/SQLite is an experimental feature/)
      expect(result.stderr).toMatch(/ExperimentalWarning: another experimental feature/)
    },
  )

  it('never shows with the default driver, on any Node', () => {
    const result = run(
      "import { sqliteStore } from '@backplane/workflow/sqlite'; const s = sqliteStore({ path: ':memory:' }); await s.open(); await s.close(); console.log(s.driver)",
    )
    expect([result.status, result.stdout.trim(), result.stderr]).toEqual([
      0,
      nodeSqliteExpected ? 'node:sqlite' : 'better-sqlite3',
      '',
    ])
  })
})
