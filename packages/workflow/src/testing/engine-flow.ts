/**
 * The flow-control part of the engine-over-store suite: concurrency and rate limits per activity
 * and per key (in order, nothing spent while waiting), the circuit breaker, pausing by hand, and, on
 * a store several processes share, one limit held across two engines. Skipped for a store without
 * the flow methods.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type ManualClock, manualClock } from '../clock.js'
import { createEngine } from '../engine.js'
import { flowMethods } from '../flow-store.js'
import { defineMachine } from '../machine.js'
import type { Store } from '../store.js'
import type { ActivityDefinition, Engine } from '../types.js'
import { type Suite, T0 } from './suite.js'

/** Calls the `work` activity once with its context, and ends `done` or `failed`. */
export const flowJob = defineMachine({
  id: 'flowjob',
  version: 1,
  context: z.object({ key: z.string(), n: z.number() }),
  init: (input: unknown) => input as { key: string; n: number },
  initial: 'working',
  states: {
    working: {
      invoke: { activity: 'work', input: (c) => ({ key: c.key, n: c.n }), onDone: 'done', onError: 'failed' },
    },
    done: { type: 'final' },
    failed: { type: 'final' },
  },
})

/** An activity whose calls wait until the test finishes them; it records what ran and how many at once. */
function blocking() {
  const started: number[] = []
  const pending = new Map<number, () => void>()
  let active = 0
  let maxActive = 0
  const run = async (input: { n: number }) => {
    started.push(input.n)
    active++
    maxActive = Math.max(maxActive, active)
    await new Promise<void>((resolve) => pending.set(input.n, resolve))
    active--
    return { n: input.n }
  }
  return {
    run,
    started,
    get maxActive() {
      return maxActive
    },
    finish(n: number) {
      const resolve = pending.get(n)
      if (!resolve) throw new Error(`call ${n} is not running`)
      pending.delete(n)
      resolve()
    },
  }
}

/** Real-time wait for what the engine commits (a database store answers after the clock's settling). */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms))

export function engineFlowTests(name: string, suite: Suite): void {
  const { hooks, reopen, open, engines } = suite

  const harness = async (clock: ManualClock, work: ActivityDefinition, store?: Store) => {
    const s = store ? await reopen(store) : await hooks.create()
    const engine = await createEngine({
      store: s,
      machines: [flowJob],
      activities: { work },
      clock,
      pollInterval: 50,
      closeTimeout: 50,
    })
    engines.push(engine)
    open.push(s)
    return { engine, store: s }
  }
  const statuses = async (engine: Engine, ids: string[]) =>
    Promise.all(ids.map(async (id) => (await engine.get(id)).state))
  const startAll = async (engine: Engine, clock: ManualClock, inputs: { key: string; n: number }[]) => {
    const ids: string[] = []
    for (const input of inputs) {
      // One ms apart: the queue order is the order they became due.
      await clock.advance(1)
      ids.push((await engine.start(flowJob, { id: `f${input.n}`, input })).id)
    }
    return ids
  }
  const supported = async () => flowMethods((await hooks.create()) as Partial<Store>) !== undefined

  describe(`${name} store: flow control driven by the engine`, () => {
    it('a concurrency limit runs at most N at once, in the order they became due', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const work = blocking()
      const { engine } = await harness(clock, { run: work.run, limits: { concurrency: 2 } })
      const ids = await startAll(
        engine,
        clock,
        [1, 2, 3, 4, 5].map((n) => ({ key: 'k', n })),
      )
      await until(() => work.started.length === 2, 'two calls run')
      await settle()
      expect(work.started).toEqual([1, 2])
      expect(engine.stats().waiting).toBe(3)
      // Waiting spends nothing: the waiting calls are still on their first attempt.
      expect((await engine.get('f5')).tasks[0]?.attempt).toBe(1)
      for (const n of [1, 2, 3, 4, 5]) {
        await until(() => work.started.includes(n), `call ${n} runs`)
        work.finish(n)
      }
      await until(async () => (await statuses(engine, ids)).every((s) => s === 'done'), 'all are done')
      expect(work.started).toEqual([1, 2, 3, 4, 5])
      expect(work.maxActive).toBe(2)
    })

    it('a per-key limit holds back one key and lets the others pass', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const work = blocking()
      const { engine } = await harness(clock, {
        run: work.run,
        limits: { key: (input: { key: string }) => input.key, perKey: { concurrency: 1 } },
      })
      await startAll(engine, clock, [
        { key: 'a', n: 1 },
        { key: 'a', n: 2 },
        { key: 'b', n: 3 },
      ])
      await until(() => work.started.length === 2, 'a and b run')
      await settle()
      expect([...work.started].sort()).toEqual([1, 3])
      work.finish(1)
      await until(() => work.started.includes(2), 'the second a runs')
      work.finish(2)
      work.finish(3)
      await until(async () => (await engine.get('f2')).state === 'done', 'f2 is done')
    })

    it('a rate limit starts at most N per interval; the rest start when the window opens', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const calls: number[] = []
      const { engine } = await harness(clock, {
        run: (input: { n: number }) => {
          calls.push(input.n)
          return { ok: true }
        },
        limits: { rate: { limit: 2, per: '10s' } },
      })
      const ids = await startAll(
        engine,
        clock,
        [1, 2, 3, 4, 5].map((n) => ({ key: 'k', n })),
      )
      await until(() => calls.length === 2, 'two calls')
      await settle()
      expect(calls).toEqual([1, 2])
      await clock.advance('10s')
      await until(() => calls.length === 4, 'two more after 10 s')
      await settle()
      expect(calls).toEqual([1, 2, 3, 4])
      await clock.advance('10s')
      await until(async () => (await statuses(engine, ids)).every((s) => s === 'done'), 'all are done')
      expect(calls).toEqual([1, 2, 3, 4, 5])
    })

    it('a breaker parks the activity after N failures in a row, then one probe closes it', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      let healthy = false
      const calls: number[] = []
      const { engine } = await harness(clock, {
        run: (input: { n: number }) => {
          calls.push(input.n)
          if (!healthy) throw new Error('gateway down')
          return { ok: true }
        },
        retry: { maxAttempts: 50, initialDelay: '1s', factor: 1, jitter: false },
        breaker: { failures: 3, cooldown: '1m' },
      })
      const seen: string[] = []
      engine.events.on('breaker', (e) => seen.push(e.state))
      await startAll(engine, clock, [{ key: 'k', n: 1 }])
      // Each failed attempt is retried 1 s later; a database store commits the retry after some real time.
      for (let i = 0; i < 30 && calls.length < 3; i++) {
        await clock.advance('1s')
        await settle(30)
      }
      await until(() => seen.includes('open'), 'the breaker opens')
      for (let i = 0; i < 10; i++) await clock.advance('1s')
      await settle()
      // Parked: no attempt ran while open, and the waiting attempt is not spent.
      expect(calls.length).toBe(3)
      expect((await engine.get('f1')).tasks[0]?.attempt).toBe(4)
      const [state] = await engine.activities()
      expect(state).toMatchObject({ activity: 'work', breaker: 'open', failures: 3, paused: false })
      // A call started while open waits too.
      await startAll(engine, clock, [{ key: 'k', n: 2 }])
      await settle()
      expect(calls.length).toBe(3)
      healthy = true
      await clock.advance('1m')
      await until(async () => (await engine.get('f1')).state === 'done', 'the probe succeeds')
      await until(async () => (await engine.get('f2')).state === 'done', 'the parked call runs')
      expect(calls).toEqual([1, 1, 1, 1, 2])
      expect(seen).toEqual(['open', 'closed'])
      expect((await engine.activities())[0]).toMatchObject({ breaker: 'closed', failures: 0 })
    })

    it('pausing an activity by hand holds its attempts durably until resumed', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const calls: number[] = []
      const { engine, store } = await harness(clock, {
        run: (input: { n: number }) => {
          calls.push(input.n)
          return { ok: true }
        },
      })
      expect(await engine.pauseActivity('work')).toMatchObject({ activity: 'work', paused: true, breaker: 'closed' })
      await startAll(engine, clock, [{ key: 'k', n: 1 }])
      await clock.advance('1m')
      await settle()
      expect(calls).toEqual([])
      expect(engine.stats().waiting).toBe(1)
      // Kept by the store: another handle (a restarted process, the CLI) sees it.
      const other = await reopen(store)
      await other.open()
      open.push(other)
      expect((await flowMethods(other as Partial<Store>)?.listActivityControls())?.[0]).toMatchObject({
        activity: 'work',
        paused: true,
      })
      expect(await engine.resumeActivity('work')).toMatchObject({ paused: false })
      await until(async () => (await engine.get('f1')).state === 'done', 'the call runs')
      expect(calls).toEqual([1])
      await expect(engine.pauseActivity('')).rejects.toMatchObject({ code: 'WORKFLOW_INVALID_OPTIONS' })
    })

    it('a key function that throws fails the call with a clear error', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const { engine } = await harness(clock, {
        run: () => ({ ok: true }),
        limits: {
          key: () => {
            throw new Error('no customer')
          },
          perKey: { concurrency: 1 },
        },
      })
      await startAll(engine, clock, [{ key: 'k', n: 1 }])
      await until(async () => (await engine.get('f1')).state === 'failed', 'the call fails')
      const history = await engine.history('f1')
      expect(JSON.stringify(history.at(-1)?.event)).toMatch(/limits\.key of work threw: no customer/)
    })

    it('one concurrency limit holds across two engines on the store', async (t) => {
      const probe = await hooks.create()
      if (!flowMethods(probe as Partial<Store>) || !probe.shared) return t.skip()
      const clock = manualClock(T0)
      const work = blocking()
      const definition = { run: work.run, limits: { concurrency: 2 } }
      const a = await harness(clock, definition)
      const b = await harness(clock, definition, a.store)
      const ids = [
        ...(await startAll(
          a.engine,
          clock,
          [1, 2, 3].map((n) => ({ key: 'k', n })),
        )),
        ...(await startAll(
          b.engine,
          clock,
          [4, 5, 6].map((n) => ({ key: 'k', n })),
        )),
      ]
      const finished = new Set<number>()
      while (finished.size < 6) {
        await until(() => work.started.some((n) => !finished.has(n)), 'a call runs')
        await settle(60)
        const runningNow = work.started.filter((n) => !finished.has(n))
        expect(runningNow.length).toBeLessThanOrEqual(2)
        const next = runningNow[0] as number
        finished.add(next)
        work.finish(next)
      }
      await until(async () => (await statuses(a.engine, ids)).every((s) => s === 'done'), 'all are done')
      expect(work.maxActive).toBe(2)
      expect([...work.started].sort()).toEqual([1, 2, 3, 4, 5, 6])
    })
  })
}
