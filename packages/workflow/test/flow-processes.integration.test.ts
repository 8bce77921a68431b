/**
 * Flow limits across processes: three engine processes on one PostgreSQL database run one activity
 * limited store-wide (2 at once, 15 per second, one at a time per key). One of them is killed with
 * SIGKILL mid-run; its slots lapse with its lease and the others take its calls over. Every call
 * runs, and no limit is exceeded at any time, the killed process's calls included.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { postgresStore } from '../src/stores/postgres.js'
import { processSchema } from './helpers/pg.js'
import { sleep, spawnFixture } from './helpers/runner.js'

const url = process.env.DATABASE_URL ?? ''
const schema = processSchema('wf_flow')
const script = fileURLToPath(new URL('./fixtures/flow-runner.mjs', import.meta.url))
const COUNT = 15
const CONCURRENCY = 2
const RATE = 15
const RATE_PER_MS = 1000

interface Call {
  n: string
  key: string
  begin: number
  end: number | undefined
}

function runner(owner: string, calls: Call[]) {
  let ready = false
  let onDone: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    onDone = resolve
  })
  const env = {
    DATABASE_URL: url,
    SCHEMA: schema,
    OWNER: owner,
    COUNT: String(COUNT),
    KEYS: '3',
    LEASE_MS: '2000',
    CONCURRENCY: String(CONCURRENCY),
    RATE: String(RATE),
    RATE_PER_MS: String(RATE_PER_MS),
    CALL_MS: '20',
  }
  const { child, exit, stderr } = spawnFixture(script, env, (line) => {
    const [kind, n, key, at] = line.split(' ')
    if (kind === 'B') calls.push({ n: n as string, key: key as string, begin: Number(at), end: undefined })
    else if (kind === 'E') {
      const call = calls.findLast((c) => c.n === n && c.end === undefined)
      if (call) call.end = Number(at)
    } else if (kind === 'READY') ready = true
    else if (kind === 'DONE') onDone()
  })
  return { child, done, exit, stderr, ready: () => ready }
}

/** The most intervals open at once among `calls` (an end at t closes before a begin at t). */
function maxOverlap(calls: readonly Call[]): number {
  const points = calls.flatMap((c) => [
    { at: c.begin, d: 1 },
    { at: c.end as number, d: -1 },
  ])
  points.sort((a, b) => a.at - b.at || a.d - b.d)
  let open = 0
  let max = 0
  for (const p of points) {
    open += p.d
    max = Math.max(max, open)
  }
  return max
}

describe('flow limits across engine processes on PostgreSQL', () => {
  it('hold store-wide, a killed process included, and every call runs', async () => {
    const calls: Call[] = []
    const runners = ['A', 'B', 'C'].map((owner) => runner(owner, calls))
    const [a, b, c] = runners as [ReturnType<typeof runner>, ReturnType<typeof runner>, ReturnType<typeof runner>]
    let timedOut = false
    const guard = setTimeout(() => {
      timedOut = true
      for (const r of runners) r.child.kill('SIGKILL')
    }, 60_000)
    const finished = Promise.all([a.done, b.done])
    try {
      // Kill C once it has started all its instances (READY) and begun calls: its slots and queue
      // places lapse with its lease (2 s).
      while (!c.ready() || calls.filter((call) => call.n.startsWith('C-')).length < 3) await sleep(5)
      c.child.kill('SIGKILL')
      const killedAt = Date.now()
      await c.exit
      await Promise.race([finished, Promise.all([a.exit, b.exit])])
      expect(timedOut, `stalled after ${calls.length} calls: ${a.stderr()}${b.stderr()}`).toBe(false)
      // C's calls were taken over: every instance ends done. A and B are done with their own;
      // C's, which they took over, may still be running.
      const store = postgresStore({ connectionString: url, schema })
      await store.open()
      let doneCount = 0
      for (const until = Date.now() + 30_000; doneCount < 3 * COUNT && Date.now() < until; ) {
        doneCount = (await store.list({ machine: 'flowjob', status: 'done', limit: 1000 })).length
        await sleep(50)
      }
      await store.close()
      expect(doneCount, `${a.stderr()}${b.stderr()}`).toBe(3 * COUNT)
      // A call C was running when killed counts until the kill (its slot lasted longer still).
      for (const call of calls) call.end ??= killedAt
      expect(new Set(calls.map((call) => call.n)).size).toBe(3 * COUNT)
      expect(maxOverlap(calls)).toBeLessThanOrEqual(CONCURRENCY)
      expect(maxOverlap(calls)).toBe(CONCURRENCY)
      for (const key of ['k0', 'k1', 'k2']) expect(maxOverlap(calls.filter((call) => call.key === key))).toBe(1)
      // Starts are printed a little after the store admitted them (a busy process: tens of ms): allow 200 ms.
      const begins = calls.map((call) => call.begin).sort((x, y) => x - y)
      for (const [i, at] of begins.entries()) {
        const inWindow = begins.slice(i).filter((t) => t < at + RATE_PER_MS - 200).length
        expect(inWindow).toBeLessThanOrEqual(RATE)
      }
      expect((begins.at(-1) as number) - (begins[0] as number)).toBeGreaterThanOrEqual(
        ((3 * COUNT) / RATE - 1) * RATE_PER_MS - 100,
      )
    } finally {
      clearTimeout(guard)
      for (const r of runners) r.child.kill('SIGTERM')
      await Promise.all(runners.map((r) => r.exit))
    }
  }, 120_000)
})
