/**
 * Crash test: a child process drives 1,000 orders (activities, retries, compensations, timers,
 * outside events) on SQLite and is killed with SIGKILL at random moments, several times (it starts
 * 600 orders a second, so every kill lands while orders are being started and driven). After the
 * last restart every instance must be final, every transition the children reported committed must
 * be there, none applied twice, and every committed activity result must come from the one side
 * effect recorded under its idempotency key.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { HistoryRecord, InstanceRecord } from '../src/store-api.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { checkOrders } from './helpers/check-orders.js'
import { requireBuild, sleep, startRunner } from './helpers/runner.js'

const countReported = (reported: Map<string, Map<number, string>>) => {
  let n = 0
  for (const seqs of reported.values()) n += seqs.size
  return n
}

const COUNT = 1000
const KILLS = 5
const dir = mkdtempSync(join(tmpdir(), 'wf-crash-'))
const env = {
  STORE: 'sqlite',
  DB: join(dir, 'workflows.db'),
  EFFECTS: join(dir, 'effects.db'),
  COUNT: String(COUNT),
  PREFIX: 'o',
  START: '1',
  START_RATE: '60',
}

beforeAll(() => requireBuild())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it(`survives ${KILLS} SIGKILLs while driving ${COUNT} orders: all final, nothing lost or applied twice, each side effect once`, async () => {
  const reported = new Map<string, Map<number, string>>()
  const recoveredCounts: number[] = []
  for (let kill = 0; kill < KILLS; kill++) {
    const run = startRunner(env, reported)
    recoveredCounts.push(await Promise.race([run.ready, sleep(20_000).then(() => -1)]))
    // Kill at a random moment once this run is making progress (so each kill lands mid-work).
    const before = countReported(reported)
    for (let waited = 0; countReported(reported) < before + 20 && waited < 10_000; waited += 10) await sleep(10)
    await sleep(50 + Math.floor(Math.random() * 500))
    run.child.kill('SIGKILL')
    const exit = await run.exit
    expect(exit.signal, JSON.stringify(exit)).toBe('SIGKILL')
    expect(exit.done, 'the runner finished before it could be killed: the test no longer tests crashes').toBe(false)
  }
  const last = startRunner(env, reported)
  const timeout = setTimeout(() => last.child.kill('SIGKILL'), 90_000)
  const exit = await last.exit
  clearTimeout(timeout)
  expect(exit.stderr).toBe('')
  expect(exit).toMatchObject({ code: 0, done: true })
  // Instances were in flight at the restarts, and the engine resumed them. Not at every restart:
  // on a loaded machine a kill can land between two orders, with nothing in flight.
  const resumed = recoveredCounts.slice(1).filter((n) => n > 0)
  expect(
    resumed.length,
    `instances resumed per restart: ${recoveredCounts.slice(1).join(', ')}`,
  ).toBeGreaterThanOrEqual(Math.ceil((KILLS - 1) / 2))

  const store = sqliteStore(env.DB)
  await store.open()
  const instances: InstanceRecord[] = await store.list({ limit: 10_000 })
  const history = new Map<string, HistoryRecord[]>()
  for (const instance of instances) history.set(instance.id, await store.history(instance.id))
  await store.close()
  const db = new Database(env.EFFECTS, { readonly: true })
  const effects = new Map(
    (db.prepare('SELECT key, result FROM effects').all() as { key: string; result: string }[]).map((r) => [
      r.key,
      JSON.parse(r.result),
    ]),
  )
  const executions = (db.prepare('SELECT count(*) AS n FROM executions').get() as { n: number }).n
  db.close()

  const result = checkOrders({ instances, history, effects, reported, expected: COUNT })
  const reportedCount = countReported(reported)
  console.log(
    `crash test: ${KILLS} kills, resumed ${recoveredCounts.join('/')} instances, ${result.transitions} transitions (${reportedCount} reported before kills), final ${JSON.stringify(result.final)}, ${result.activityResults} activity results, ${effects.size} side effects, ${executions} executions (${executions - effects.size} repeats absorbed by idempotency keys)`,
  )
  expect(result.problems).toEqual([])
  expect(result.final.delivered).toBeGreaterThan(COUNT / 2)
  expect(result.final.cancelled).toBeGreaterThan(0)
  expect(reportedCount).toBeGreaterThan(COUNT)
}, 180_000)
