/**
 * Two engine processes on one PostgreSQL database drive the same 1,000 orders: each starts half of
 * them, both send the outside events to every order, both claim due work. Each
 * transition must be applied exactly once and each activity call driven by one process. Then a
 * process is killed with SIGKILL mid-run and the other takes its instances over once its lease
 * expires.
 */
import { describe, expect, it } from 'vitest'
import type { HistoryRecord, InstanceRecord } from '../src/store-api.js'
import { postgresStore } from '../src/stores/postgres.js'
import { checkOrders } from './helpers/check-orders.js'
import { processSchema } from './helpers/pg.js'
import { sleep, startRunner } from './helpers/runner.js'

const url = process.env.DATABASE_URL ?? ''
const schema = processSchema('wf_procs')

async function collect(prefix: string, count: number, reported: Map<string, Map<number, string>>) {
  const pg = (await import('pg')).default
  const store = postgresStore({ connectionString: url, schema })
  await store.open()
  const instances: InstanceRecord[] = (await store.list({ limit: 100_000 })).filter((i) =>
    i.id.startsWith(`${prefix}-`),
  )
  const history = new Map<string, HistoryRecord[]>()
  for (const instance of instances) history.set(instance.id, await store.history(instance.id))
  await store.close()
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const effects = new Map(
    (
      await client.query<{ key: string; result: unknown }>(
        `SELECT key, result FROM "${schema}".effects WHERE key LIKE $1`,
        [`${prefix}-%`],
      )
    ).rows.map((r) => [r.key, r.result]),
  )
  const executions = (
    await client.query<{ key: string; owners: string[] }>(
      `SELECT key, array_agg(DISTINCT owner) AS owners FROM "${schema}".executions WHERE key LIKE $1 GROUP BY key`,
      [`${prefix}-%`],
    )
  ).rows
  await client.end()
  return { check: checkOrders({ instances, history, effects, reported, expected: count }), executions, effects }
}

describe('two engine processes on one PostgreSQL database', () => {
  it('drive 1,000 orders together: every transition applied exactly once, each activity call by one process', async () => {
    const reported = new Map<string, Map<number, string>>()
    const env = {
      STORE: 'postgres',
      DATABASE_URL: url,
      SCHEMA: schema,
      COUNT: '1000',
      PREFIX: 'p',
      START: '1',
      LEASE_MS: '5000',
    }
    // Each starts every other order; both send the outside events to all of them.
    const a = startRunner({ ...env, OWNER: 'A', START_EVERY: '2', START_OFFSET: '0' }, reported)
    const b = startRunner({ ...env, OWNER: 'B', START_EVERY: '2', START_OFFSET: '1' }, reported)
    const timeout = setTimeout(() => {
      a.child.kill('SIGKILL')
      b.child.kill('SIGKILL')
    }, 120_000)
    const [exitA, exitB] = await Promise.all([a.exit, b.exit])
    clearTimeout(timeout)
    expect(exitA, exitA.stderr).toMatchObject({ code: 0, done: true, stderr: '' })
    expect(exitB, exitB.stderr).toMatchObject({ code: 0, done: true, stderr: '' })

    const { check, executions, effects } = await collect('p', 1000, reported)
    const byOwner = { A: 0, B: 0 }
    for (const row of executions) for (const owner of row.owners) byOwner[owner as 'A' | 'B']++
    const shared = executions.filter((row) => row.owners.length > 1).map((row) => row.key)
    console.log(
      `two processes: ${check.transitions} transitions, final ${JSON.stringify(check.final)}, ${check.activityResults} activity results, ${effects.size} side effects, activity calls driven by A ${byOwner.A}, by B ${byOwner.B}, by both ${shared.length}`,
    )
    expect(check.problems).toEqual([])
    expect(shared).toEqual([])
    expect(byOwner.A).toBeGreaterThan(0)
    expect(byOwner.B).toBeGreaterThan(0)
  }, 150_000)

  it('take over the instances of a process killed mid-run once its lease expires', async () => {
    const reported = new Map<string, Map<number, string>>()
    const env = {
      STORE: 'postgres',
      DATABASE_URL: url,
      SCHEMA: schema,
      COUNT: '300',
      PREFIX: 'q',
      START: '1',
      LEASE_MS: '1000',
    }
    const a = startRunner({ ...env, OWNER: 'A2' }, reported)
    await a.ready
    await sleep(400)
    const b = startRunner({ ...env, OWNER: 'B2' }, reported)
    await b.ready
    await sleep(200)
    a.child.kill('SIGKILL')
    expect((await a.exit).signal).toBe('SIGKILL')
    const started = Date.now()
    const timeout = setTimeout(() => b.child.kill('SIGKILL'), 60_000)
    const exitB = await b.exit
    clearTimeout(timeout)
    expect(exitB, exitB.stderr).toMatchObject({ code: 0, done: true, stderr: '' })
    const { check, executions } = await collect('q', 300, reported)
    const byA = executions.filter((row) => row.owners.includes('A2')).length
    const takenOver = executions.filter((row) => row.owners.length > 1).length
    console.log(
      `takeover: B finished ${Date.now() - started} ms after A was killed, taking over ${b.claimed()} instances; ${check.transitions} transitions, final ${JSON.stringify(check.final)}; A had driven ${byA} activity calls, ${takenOver} of them run again by B`,
    )
    expect(check.problems).toEqual([])
    expect(byA).toBeGreaterThan(0)
    expect(b.claimed()).toBeGreaterThan(0)
  }, 90_000)
})
