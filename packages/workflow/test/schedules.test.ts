import { describe, expect, it } from 'vitest'
import { createEngine, WorkflowError } from '../src/index.js'
import { tickAtOrAfter } from '../src/schedule-spec.js'
import { memoryStore } from '../src/stores/memory.js'
import { scheduledJob } from '../src/testing/engine-schedules.js'
import { testEngine } from '../src/testing/index.js'

const T0 = Date.UTC(2030, 0, 1)
const HOUR = 3_600_000
const code = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (error) {
    return WorkflowError.is(error) ? `${error.code}: ${error.message}` : String(error)
  }
  return 'resolved'
}

describe('engine.schedule', () => {
  it('clock.advance("1d") with an hourly cron starts one instance per simulated hour, in order', async () => {
    const { engine, clock, close } = await testEngine({ machines: [scheduledJob] })
    await engine.schedule('hourly', { cron: '0 * * * *', machine: scheduledJob, overlap: 'allow' })
    await clock.advance('1d')
    const ids = (await engine.list({ limit: 100 })).instances.map((i) => i.id)
    expect(ids).toEqual(Array.from({ length: 24 }, (_, h) => `hourly@${new Date(T0 + (h + 1) * HOUR).toISOString()}`))
    await close()
  })

  it('refuses bad options with WORKFLOW_INVALID_OPTIONS saying what was expected', async () => {
    const { engine, close } = await testEngine({ machines: [scheduledJob] })
    expect(await code(engine.schedule('x', { machine: 'job' }))).toMatch(/INVALID_OPTIONS.*exactly one of cron/)
    expect(await code(engine.schedule('x', { machine: 'job', cron: '* * * * *', every: '1h' }))).toMatch(
      /exactly one of cron/,
    )
    expect(await code(engine.schedule('x', { machine: 'job', cron: 'nope' }))).toMatch(/cron: expected a cron pattern/)
    expect(await code(engine.schedule('x', { machine: 'job', cron: '0 * * * *', timezone: 'Mars/Base' }))).toMatch(
      /IANA time zone/,
    )
    expect(await code(engine.schedule('x', { machine: 'job', every: 'soon' }))).toMatch(/every: expected a duration/)
    expect(await code(engine.schedule('x', { machine: 'job', every: '1h', timezone: 'UTC' }))).toMatch(/cron only/)
    expect(await code(engine.schedule('x', { machine: 'job', every: '1h', catchUp: -1 }))).toMatch(/catchUp/)
    expect(await code(engine.schedule('x', { machine: 'job', every: '1h', overlap: 'maybe' as 'skip' }))).toMatch(
      /overlap/,
    )
    expect(await code(engine.schedule('x', { machine: 'nope', every: '1h' }))).toMatch(/UNKNOWN_MACHINE/)
    expect(await code(engine.schedule('', { machine: 'job', every: '1h' }))).toMatch(/schedule id/)
    expect(await engine.schedules()).toEqual([])
    await close()
  })

  it('replacing keeps the tick history; pause skips ticks, resume goes on from the next; unschedule removes', async () => {
    const { engine, clock, close } = await testEngine({ machines: [scheduledJob] })
    await engine.schedule('s', { every: '1h', machine: 'job', overlap: 'allow' })
    await clock.advance('2h')
    const replaced = await engine.schedule('s', { every: '1h', machine: 'job', overlap: 'allow', input: { n: 2 } })
    expect(replaced.lastTick).toEqual(new Date(T0 + 2 * HOUR))
    expect(replaced.nextTick).toEqual(new Date(T0 + 3 * HOUR))
    await engine.pauseSchedule('s')
    await clock.advance('2h30m')
    expect((await engine.list()).instances).toHaveLength(2)
    const resumed = await engine.resumeSchedule('s')
    expect(resumed.nextTick).toEqual(new Date(T0 + 5 * HOUR))
    await clock.advance('30m')
    const last = await engine.get<{ n: number }>(`s@${new Date(T0 + 5 * HOUR).toISOString()}`)
    expect(last.context.n).toBe(2)
    expect(await engine.unschedule('s')).toBe(true)
    expect(await engine.unschedule('s')).toBe(false)
    await clock.advance('3h')
    expect((await engine.list()).instances).toHaveLength(3)
    await close()
  })

  it('a store without the schedule methods refuses schedules with a typed error', async () => {
    const {
      putSchedule: _p,
      getSchedule: _g,
      listSchedules: _l,
      deleteSchedule: _d,
      claimDueSchedules: _c,
      ...rest
    } = memoryStore()
    const engine = await createEngine({ store: rest, machines: [scheduledJob], worker: false })
    expect(await code(engine.schedule('x', { machine: 'job', every: '1h' }))).toMatch(
      /INVALID_OPTIONS: schedule: the memory store does not keep schedules/,
    )
    expect(await code(engine.schedules())).toMatch(/does not keep schedules/)
    await engine.close()
  })

  it('every with startAt ticks from startAt; endAt ends it', async () => {
    const d = {
      every: HOUR,
      timezone: 'UTC',
      machine: 'job',
      inputFunction: false,
      overlap: 'allow' as const,
      catchUp: 1,
      paused: false,
      anchor: T0,
      startAt: T0 + 30 * 60_000,
      endAt: T0 + 3 * HOUR,
    }
    expect(tickAtOrAfter(d, T0)).toBe(T0 + 30 * 60_000)
    expect(tickAtOrAfter(d, T0 + HOUR)).toBe(T0 + 90 * 60_000)
    expect(tickAtOrAfter(d, T0 + 3 * HOUR)).toBeNull()
  })
})
