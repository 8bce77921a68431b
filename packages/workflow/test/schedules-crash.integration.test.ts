/**
 * Three engine processes on one PostgreSQL database drive one schedule ticking every 200 ms, while
 * the test SIGKILLs one of them every ~700 ms and starts it again, for ~10 s of real time; at the end
 * one process catches up what is left. With every missed tick caught up (catchUp: 10,000), each
 * tick from the first to the last must have been started exactly once: no gap, and no tick
 * reported started by two processes.
 */
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { postgresStore } from '../src/stores/postgres.js'
import { processSchema } from './helpers/pg.js'
import { sleep, spawnFixture } from './helpers/runner.js'

const url = process.env.DATABASE_URL ?? ''
const schema = processSchema('wf_sched')
const script = fileURLToPath(new URL('./fixtures/schedule-runner.mjs', import.meta.url))
const PERIOD = 200

interface Proc {
  child: ChildProcess
  ready: Promise<void>
  exited: Promise<unknown>
}

/** Every "S <instance>" line any process printed: instance → how many processes reported starting it. */
const starts = new Map<string, number>()
/** What every process started wrote to stderr. */
const stderr: (() => string)[] = []

function run(owner: string, startAt: number): Proc {
  let onReady: () => void = () => undefined
  const ready = new Promise<void>((resolve) => {
    onReady = resolve
  })
  const env = { SCHEMA: schema, OWNER: owner, START_AT: String(startAt), PERIOD_MS: String(PERIOD), LEASE_MS: '600' }
  const fixture = spawnFixture(script, env, (line) => {
    if (line === 'READY') onReady()
    else if (line.startsWith('S ')) starts.set(line.slice(2), (starts.get(line.slice(2)) ?? 0) + 1)
  })
  stderr.push(fixture.stderr)
  return { child: fixture.child, ready, exited: fixture.exit }
}

describe('schedules across SIGKILLed engine processes on PostgreSQL', () => {
  it('starts every tick exactly once while processes are killed and restarted', { timeout: 60_000 }, async () => {
    // Far enough ahead that all three processes have the schedule before its first tick, also with
    // other test files running beside this one: a schedule does not backfill ticks before it existed.
    const startAt = Math.ceil((Date.now() + 4000) / PERIOD) * PERIOD
    const procs: Proc[] = ['a', 'b', 'c'].map((name) => run(`p-${name}`, startAt))
    await Promise.all(procs.map((p) => p.ready))
    const until = Date.now() + 10_000
    let kills = 0
    for (let round = 0; Date.now() < until; round++) {
      await sleep(500 + Math.floor(Math.random() * 400))
      const victim = round % procs.length
      ;(procs[victim] as Proc).child.kill('SIGKILL')
      await (procs[victim] as Proc).exited
      kills++
      procs[victim] = run(`p-${victim}-${round}`, startAt)
    }
    for (const p of procs) p.child.kill('SIGKILL')
    await Promise.all(procs.map((p) => p.exited))
    // Everything down for a while: a gap of missed ticks, caught up by the last process.
    await sleep(1000)
    const last = run('p-last', startAt)
    await last.ready
    await sleep(2500)
    last.child.kill('SIGTERM')
    await last.exited

    const store = postgresStore({ connectionString: url, schema })
    await store.open()
    const ticks = (await store.list({ machine: 'pulse', limit: 100_000 })).map((i) =>
      Date.parse(i.id.split('@')[1] as string),
    )
    const history = await Promise.all(
      (await store.list({ machine: 'pulse', limit: 100_000 })).map((i) => store.history(i.id)),
    )
    await store.close()
    ticks.sort((a, b) => a - b)
    expect(kills).toBeGreaterThanOrEqual(8)
    expect(ticks.length).toBeGreaterThan(40)
    expect(ticks[0]).toBe(startAt)
    // No gap: consecutive ticks, one period apart, from the first to the last.
    const gaps = ticks.slice(1).filter((tick, i) => tick - (ticks[i] as number) !== PERIOD)
    expect(gaps).toEqual([])
    // Each instance has exactly one start row, and no two processes reported committing the same start.
    expect(history.every((rows) => rows.filter((row) => row.kind === 'start').length === 1)).toBe(true)
    expect([...starts.entries()].filter(([, n]) => n > 1)).toEqual([])
    expect(starts.size).toBeGreaterThan(0)
    expect(stderr.map((text) => text()).join('')).not.toMatch(/ERROR/)
  })
})
