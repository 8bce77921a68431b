/**
 * The engine's metrics, recorded through an in-memory OpenTelemetry SDK over a SQLite store: the
 * values agree with what the store holds (history rows, instance statuses), and everything recorded
 * is in the README's catalogue. Without a meter provider nothing is recorded and nothing breaks.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  expectInCatalogue,
  type MetricRecording,
  type RecordedMetric,
  readCatalogue,
  recordMetrics,
  total,
} from '../../../test/helpers/metric-catalogue.js'
import { workflowMetrics } from '../src/engine/metrics.js'
import { defineMachine, type Engine, NonRetryableError } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { type TestEngine, testEngine } from '../src/testing/test-engine.js'

const shipment = defineMachine({
  id: 'shipment',
  version: 1,
  context: z.object({ n: z.number() }),
  initial: 'new',
  states: {
    new: { on: { GO: 'charging', BOOM: 'exploding' } },
    charging: { invoke: { activity: 'charge', onDone: 'waiting' } },
    waiting: { after: { '10m': 'delivered' } },
    // No onError: the activity's failure fails the instance.
    exploding: { invoke: { activity: 'explode', onDone: 'delivered' } },
    delivered: { type: 'final' },
  },
})

const IDS = ['s-1', 's-2', 's-3', 's-4', 's-5', 's-6']

let running: TestEngine | undefined
let recording: MetricRecording | undefined
let dir: string | undefined
afterEach(async () => {
  await running?.close()
  await recording?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
  running = recording = dir = undefined
})

async function engineOverSqlite(): Promise<{ running: TestEngine; charges: () => number }> {
  dir = mkdtempSync(join(tmpdir(), 'wf-metrics-'))
  let charges = 0
  running = await testEngine({
    store: sqliteStore({ path: join(dir, 'wf.sqlite') }),
    machines: [shipment],
    retry: { maxAttempts: 3, initialDelay: '1s', jitter: 'none' },
    activities: {
      charge: async () => {
        charges++
        if (charges === 1) throw new Error('gateway down')
        return {}
      },
      explode: async () => {
        throw new NonRetryableError('card declined')
      },
    },
  })
  return { running, charges: () => charges }
}

/**
 * s-1, s-2: charged (the first charge fails once), then delivered by their 10-minute timer; s-3:
 * charged, its timer still armed; s-4: failed by its activity; s-5: cancelled; s-6: left in `new`.
 */
async function drive({ engine, clock }: TestEngine): Promise<void> {
  for (const id of IDS) await engine.start(shipment, { id, input: { n: 0 } })
  await engine.send('s-1', { type: 'GO' })
  await engine.send('s-2', { type: 'GO' })
  await clock.advance(0)
  await clock.advance('1s') // the failed attempt's retry
  for (const id of ['s-1', 's-2']) await engine.waitFor(id, (i) => i.state === 'waiting')
  await clock.advance('10m')
  for (const id of ['s-1', 's-2']) await engine.waitFor(id, (i) => i.status === 'done')
  await engine.send('s-3', { type: 'GO' })
  await engine.send('s-4', { type: 'BOOM' })
  await clock.advance(0)
  await engine.waitFor('s-3', (i) => i.state === 'waiting')
  await engine.waitFor('s-4', (i) => i.status === 'failed')
  await engine.cancel('s-5')
}

const historyOf = async (engine: Engine) => (await Promise.all(IDS.map((id) => engine.history(id)))).flat()

const metric = (recorded: RecordedMetric[], name: string) => recorded.find((m) => m.name === name)

describe('workflow metrics', () => {
  it('counts what the store records: transitions, attempts, timer lag, instances by status', async () => {
    recording = recordMetrics()
    const { running, charges } = await engineOverSqlite()
    await drive(running)
    const recorded = await recording.collect()

    // One per history row, by kind; done and cancelled are the status after the commit.
    const history = await historyOf(running.engine)
    expect(history.length).toBeGreaterThan(IDS.length)
    expect(total(recorded, 'backplane.workflow.transitions')).toBe(history.length)
    for (const kind of new Set(history.map((h) => h.kind))) {
      expect(total(recorded, 'backplane.workflow.transitions', { 'workflow.history.kind': kind }), kind).toBe(
        history.filter((h) => h.kind === kind).length,
      )
    }
    expect(
      total(recorded, 'backplane.workflow.transitions', { 'workflow.history.kind': 'event', 'workflow.event': 'GO' }),
    ).toBe(3)
    expect(total(recorded, 'backplane.workflow.transitions', { 'workflow.status': 'done' })).toBe(2)
    expect(total(recorded, 'backplane.workflow.transitions', { 'workflow.status': 'cancelled' })).toBe(1)
    for (const point of metric(recorded, 'backplane.workflow.transitions')?.points ?? [])
      expect(point.attributes['workflow.machine']).toBe('shipment')

    // Every commit timed, all of them committed (no other process contends).
    expect(total(recorded, 'backplane.workflow.commit.duration', { outcome: 'committed' })).toBe(history.length)
    expect(total(recorded, 'backplane.workflow.commit.duration')).toBe(history.length)

    // charge: 4 attempts (s-1, s-2, s-3 and the retry of the one that failed), one failure.
    expect(charges()).toBe(4)
    const charge = { 'workflow.machine': 'shipment', 'workflow.activity': 'charge' }
    expect(total(recorded, 'backplane.workflow.activity.attempts', charge)).toBe(4)
    expect(total(recorded, 'backplane.workflow.activity.attempts', { ...charge, outcome: 'failure' })).toBe(1)
    expect(total(recorded, 'backplane.workflow.activity.attempts', { ...charge, outcome: 'success' })).toBe(3)
    expect(total(recorded, 'backplane.workflow.activity.attempts', { 'workflow.activity': 'explode' })).toBe(1)
    expect(total(recorded, 'backplane.workflow.activity.duration', charge)).toBe(4)
    // The attempts on record agree: each failed attempt that was retried is a history row.
    expect(history.filter((h) => h.kind === 'activity.attempt')).toHaveLength(1)

    // Two timers fired (s-1, s-2), on time on the simulated clock; s-3's is still armed.
    expect(history.filter((h) => h.kind === 'timer')).toHaveLength(2)
    const lag = metric(recorded, 'backplane.workflow.timer.lag')
    expect(lag?.points).toEqual([{ attributes: { 'workflow.machine': 'shipment' }, value: 0, count: 2 }])

    // Running and failed instances, by state, as the store counts them; finished ones are not in the gauge.
    const instances = metric(recorded, 'backplane.workflow.instances')
    const byStatusAndState = Object.fromEntries(
      (instances?.points ?? []).map((p) => [
        `${p.attributes['workflow.status']}/${p.attributes['workflow.state']}`,
        p.value,
      ]),
    )
    expect(byStatusAndState).toEqual({ 'running/new': 1, 'running/waiting': 1, 'failed/exploding': 1 })
    const statuses = await Promise.all(IDS.map(async (id) => (await running.engine.get(id)).status))
    expect(statuses.filter((s) => s === 'running')).toHaveLength(2)
    expect(statuses.filter((s) => s === 'failed')).toHaveLength(1)

    expectInCatalogue(recorded, readCatalogue('packages/workflow'))
    // The catalogue lists nothing the engine does not record.
    expect(
      readCatalogue('packages/workflow')
        .map((e) => e.name)
        .sort(),
    ).toEqual(recorded.map((m) => m.name).sort())
  })

  it('reports an instance count that falls to zero as 0, and stops counting a closed engine', async () => {
    recording = recordMetrics()
    const { running } = await engineOverSqlite()
    await running.engine.start(shipment, { id: 'z-1', input: { n: 0 } })
    const gauge = async () =>
      Object.fromEntries(
        (metric(await (recording as MetricRecording).collect(), 'backplane.workflow.instances')?.points ?? []).map(
          (p) => [`${p.attributes['workflow.status']}/${p.attributes['workflow.state']}`, p.value],
        ),
      )
    expect(await gauge()).toEqual({ 'running/new': 1 })
    await running.engine.cancel('z-1')
    expect(await gauge()).toEqual({ 'running/new': 0 })
    await running.close()
    // Closed: its store is not asked again (a closed SQLite store would throw).
    await expect(recording.collect()).resolves.toBeDefined()
  })

  it('records nothing without a meter provider, and starts when one is registered later', async () => {
    expect(workflowMetrics().noop).toBe(true)
    const { running } = await engineOverSqlite()
    const errors: unknown[] = []
    running.engine.events.on('error', (error) => errors.push(error))
    await drive(running)
    expect((await running.engine.get('s-1')).status).toBe('done')

    // Registered after the fact: what happened before it is not there, what happens after is.
    recording = recordMetrics()
    const before = await recording.collect()
    expect(total(before, 'backplane.workflow.transitions')).toBe(0)
    expect(total(before, 'backplane.workflow.activity.attempts')).toBe(0)
    expect(total(before, 'backplane.workflow.timer.lag')).toBe(0)
    await running.clock.advance('10m') // s-3's timer
    await running.engine.waitFor('s-3', (i) => i.status === 'done')
    const after = await recording.collect()
    expect(total(after, 'backplane.workflow.transitions', { 'workflow.history.kind': 'timer' })).toBe(1)
    expect(total(after, 'backplane.workflow.timer.lag')).toBe(1)
    expect(errors).toEqual([])
  })
})
