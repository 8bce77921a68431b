/**
 * The schedule part of the engine-over-store suite: ticks started once each and in order on a
 * manual clock, the catch-up policy after a gap, the overlap modes, and a cron on a daylight saving
 * day. Skipped for a store without the schedule methods.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type ManualClock, manualClock } from '../clock.js'
import { createEngine } from '../engine.js'
import { defineMachine } from '../machine.js'
import { scheduleMethods } from '../schedule-store.js'
import type { Store } from '../store.js'
import type { Engine } from '../types.js'
import { type Suite, T0 } from './suite.js'

const HOUR = 3_600_000

/** Waits in `working` for FINISH: what the overlap modes need to see a tick still running. */
export const scheduledJob = defineMachine({
  id: 'job',
  version: 1,
  context: z.object({ n: z.number().optional(), at: z.string().optional() }),
  // A tick's input (or none) is the context.
  init: (input: unknown) => (input ?? {}) as { n?: number; at?: string },
  initial: 'working',
  states: { working: { on: { FINISH: 'done' } }, done: { type: 'final' } },
})

export function engineScheduleTests(name: string, suite: Suite): void {
  const { hooks, reopen, open, engines } = suite

  const harness = async (clock: ManualClock, store?: Store) => {
    const s = store ? await reopen(store) : await hooks.create()
    const engine = await createEngine({ store: s, machines: [scheduledJob], clock, pollInterval: 50, closeTimeout: 50 })
    engines.push(engine)
    open.push(s)
    return { engine, store: s }
  }
  const ids = async (engine: Engine) =>
    (await engine.list({ machine: 'job', limit: 10_000 })).instances.map((i) => i.id)
  /** Real-time wait for what a pass commits (a database store answers after the clock's settling). */
  const until = async (check: () => Promise<boolean>) => {
    const deadline = Date.now() + 5000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the schedule')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const iso = (ms: number) => new Date(ms).toISOString()
  const supported = async () => scheduleMethods(await hooks.create()) !== undefined

  describe(`${name} store: schedules driven by the engine`, () => {
    it('an hourly schedule over a simulated day starts each tick once, in order', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const { engine } = await harness(clock)
      const created = await engine.schedule('hourly', {
        every: '1h',
        machine: scheduledJob,
        input: (tick: Date) => ({ at: tick.toISOString() }),
        overlap: 'allow',
      })
      expect(created.nextTick).toEqual(new Date(T0 + HOUR))
      for (let h = 1; h <= 24; h++) {
        await clock.advance('1h')
        await until(async () => (await ids(engine)).length === h)
      }
      const expected = Array.from({ length: 24 }, (_, i) => `hourly@${iso(T0 + (i + 1) * HOUR)}`)
      expect(await ids(engine)).toEqual(expected)
      const first = await engine.get<{ at: string }>(expected[0] as string)
      expect(first.context.at).toBe(iso(T0 + HOUR))
      const start = (await engine.history(expected[0] as string))[0]
      expect(start?.event).toMatchObject({ schedule: { id: 'hourly', tick: iso(T0 + HOUR) } })
      const [listed] = await engine.schedules()
      expect(listed?.lastTick).toEqual(new Date(T0 + 24 * HOUR))
      expect(listed?.nextTick).toEqual(new Date(T0 + 25 * HOUR))
    })

    it('after downtime starts only the catchUp latest missed ticks (0: none)', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const first = await harness(clock)
      for (const [id, catchUp] of [
        ['none', 0],
        ['one', 1],
        ['two', 2],
      ] as const)
        await first.engine.schedule(id, { cron: '0 * * * *', machine: 'job', overlap: 'allow', catchUp })
      await clock.advance('1h')
      await until(async () => (await ids(first.engine)).length === 3)
      await first.engine.close()
      // Down from 01:00 to 05:30: the 02:00 to 05:00 ticks are missed.
      await clock.set(T0 + 5.5 * HOUR)
      const second = await harness(clock, first.store)
      await until(async () => (await ids(second.engine)).length === 3 + 0 + 1 + 2)
      await new Promise((resolve) => setTimeout(resolve, 100))
      const all = await ids(second.engine)
      expect(all.filter((id) => id.startsWith('none@'))).toEqual([`none@${iso(T0 + HOUR)}`])
      expect(all.filter((id) => id.startsWith('one@'))).toEqual([`one@${iso(T0 + HOUR)}`, `one@${iso(T0 + 5 * HOUR)}`])
      expect(all.filter((id) => id.startsWith('two@'))).toEqual([
        `two@${iso(T0 + HOUR)}`,
        `two@${iso(T0 + 4 * HOUR)}`,
        `two@${iso(T0 + 5 * HOUR)}`,
      ])
      // And on time again from there.
      await clock.set(T0 + 6 * HOUR)
      await until(async () => (await ids(second.engine)).length === 9)
    })

    it('overlap: skip records the tick, queue starts it when the previous ends, allow starts it', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(T0)
      const { engine } = await harness(clock)
      for (const overlap of ['skip', 'queue', 'allow'] as const)
        await engine.schedule(overlap, { every: '1h', machine: 'job', overlap })
      const tick = (h: number) => iso(T0 + h * HOUR)
      const of = async (prefix: string) => (await ids(engine)).filter((id) => id.startsWith(`${prefix}@`))
      await clock.advance('1h')
      await until(async () => (await ids(engine)).length === 3)
      await clock.advance('1h')
      await until(async () => (await of('allow')).length === 2)
      await clock.advance('1h')
      await until(async () => (await of('allow')).length === 3)
      await until(async () => (await engine.schedules()).every((s) => s.nextTick?.getTime() === T0 + 4 * HOUR))
      expect(await of('skip')).toEqual([`skip@${tick(1)}`])
      expect(await of('queue')).toEqual([`queue@${tick(1)}`])
      const byId = Object.fromEntries((await engine.schedules()).map((s) => [s.id, s]))
      expect(byId.skip?.skipped).toBe(2)
      expect(byId.queue?.queuedTick).toEqual(new Date(T0 + 2 * HOUR))
      expect(byId.queue?.skipped).toBe(1)
      // The first queue instance ends: the queued 02:00 tick starts (late, under its own id).
      await engine.send(`queue@${tick(1)}`, { type: 'FINISH' })
      await until(async () => (await of('queue')).length === 2)
      expect(await of('queue')).toEqual([`queue@${tick(1)}`, `queue@${tick(2)}`])
      // Skip starts again once the running one ended.
      await engine.send(`skip@${tick(1)}`, { type: 'FINISH' })
      await clock.advance('1h')
      await until(async () => (await of('skip')).length === 2)
      expect(await of('skip')).toEqual([`skip@${tick(1)}`, `skip@${tick(4)}`])
    })

    it('a cron at 02:30 Europe/Berlin runs once on the spring-forward day, at 03:00 local', async (t) => {
      if (!(await supported())) return t.skip()
      const clock = manualClock(Date.UTC(2030, 2, 30, 0, 0))
      const { engine } = await harness(clock)
      await engine.schedule('nightly', {
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
        machine: 'job',
        overlap: 'allow',
      })
      for (let day = 1; day <= 3; day++) {
        await clock.advance('1d')
        await until(async () => (await ids(engine)).length === day)
      }
      expect(await ids(engine)).toEqual([
        'nightly@2030-03-30T01:30:00.000Z', // 02:30 CET
        'nightly@2030-03-31T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST
        'nightly@2030-04-01T00:30:00.000Z', // 02:30 CEST
      ])
    })
  })
}
