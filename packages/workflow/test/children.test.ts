/** Child workflows: spawn, the parent moving on with the child's end, cancel, retry. */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, defineMachine, manualClock, memoryStore, WorkflowError } from '../src/index.js'
import { type TestEngine, testEngine } from '../src/testing/test-engine.js'

const shipment = defineMachine({
  id: 'shipment',
  context: z.object({ orderId: z.string(), tracking: z.string().optional(), fail: z.boolean().default(false) }),
  initial: 'packing',
  states: {
    packing: {
      invoke: {
        activity: 'ship',
        input: (c) => c,
        onDone: { target: 'shipped', assign: (_, e) => ({ tracking: (e.output as { tracking: string }).tracking }) },
      },
      after: { '2h': 'lost' },
    },
    shipped: { type: 'final' },
    lost: { type: 'final' },
  },
})

const order = defineMachine({
  id: 'order',
  context: z.object({ orderId: z.string(), tracking: z.string().optional(), problem: z.string().optional() }),
  initial: 'shipping',
  states: {
    shipping: {
      spawn: {
        machine: shipment,
        input: (c) => ({ orderId: c.orderId }),
        onDone: { target: 'shipped', assign: (_, e) => ({ tracking: (e.output as { tracking?: string }).tracking }) },
        onError: { target: 'stuck', assign: (_, e) => ({ problem: e.error.message }) },
      },
      after: { '1d': 'gaveUp' },
      on: { GIVE_UP: 'gaveUp' },
    },
    shipped: { type: 'final' },
    stuck: { on: { RETRY: 'shipping' } },
    gaveUp: { type: 'final' },
  },
})

let running: TestEngine | undefined
afterEach(async () => {
  await running?.close()
  running = undefined
})

const start = async (ship: (input: { orderId: string }) => Promise<unknown>, activityTimeout = '5m') => {
  running = await testEngine({
    machines: [order, shipment],
    activities: { ship },
    retry: { maxAttempts: 1 },
    activityTimeout,
  })
  return running
}

describe('spawn', () => {
  it('starts the child in the parent commit and moves the parent on with its output, once', async () => {
    const { engine, clock } = await start(async (input) => ({ tracking: `T-${input.orderId}` }))
    await engine.start(order, { id: 'o-1', input: { orderId: 'o-1' } })
    await clock.advance(0)
    const parent = await engine.get('o-1')
    expect(parent.state).toBe('shipped')
    expect(parent.context).toMatchObject({ tracking: 'T-o-1' })
    const child = await engine.get('o-1/shipping/1')
    expect([child.machine, child.state, child.status]).toEqual(['shipment', 'shipped', 'done'])
    const kinds = (await engine.history('o-1')).map((h) => `${h.kind}:${h.from}>${h.to}`)
    expect(kinds).toEqual(['start:null>shipping', 'child.done:shipping>shipped'])
  })

  it('hands a failed child to onError; a new entry spawns a fresh child', async () => {
    let calls = 0
    const { engine, clock } = await start(async (input) => {
      calls++
      if (calls === 1) throw new Error('carrier down')
      return { tracking: `T-${input.orderId}` }
    })
    await engine.start(order, { id: 'o-2', input: { orderId: 'o-2' } })
    await clock.advance(0)
    const stuck = await engine.get('o-2')
    expect(stuck.state).toBe('stuck')
    expect(stuck.context).toMatchObject({ problem: expect.stringContaining('carrier down') })
    expect((await engine.get('o-2/shipping/1')).status).toBe('failed')
    await engine.send('o-2', { type: 'RETRY' })
    await clock.advance(0)
    expect((await engine.get('o-2')).state).toBe('shipped')
    expect((await engine.get('o-2/shipping/3')).state).toBe('shipped')
  })

  it('cancels the running child when the parent leaves the state, and when the parent is cancelled', async () => {
    const { engine, clock } = await start(() => new Promise(() => {}))
    await engine.start(order, { id: 'o-3', input: { orderId: 'o-3' } })
    await clock.advance(0)
    expect((await engine.get('o-3/shipping/1')).status).toBe('running')
    await engine.send('o-3', { type: 'GIVE_UP' })
    await clock.advance(0)
    expect((await engine.get('o-3')).state).toBe('gaveUp')
    const child = await engine.get('o-3/shipping/1')
    expect(child.status).toBe('cancelled')
    expect((await engine.history('o-3/shipping/1')).at(-1)).toMatchObject({
      kind: 'cancelled',
      event: { type: 'cancel', reason: 'its parent o-3 left state shipping' },
    })

    await engine.start(order, { id: 'o-4', input: { orderId: 'o-4' } })
    await clock.advance(0)
    const cancelled = await engine.cancel('o-4', { reason: 'customer asked' })
    expect(cancelled.status).toBe('cancelled')
    await clock.advance(0)
    expect((await engine.get('o-4/shipping/1')).status).toBe('cancelled')
    // The child's end reaches a parent that no longer waits: nothing changes.
    expect((await engine.history('o-4')).map((h) => h.kind)).toEqual(['start', 'cancelled'])
  })

  it('runs the child timers on the same clock: a child lost after 2 h ends the parent through onDone', async () => {
    const { engine, clock } = await start(() => new Promise(() => {}), '1d')
    await engine.start(order, { id: 'o-5', input: { orderId: 'o-5' } })
    await clock.advance('2h')
    expect((await engine.get('o-5/shipping/1')).state).toBe('lost')
    expect((await engine.get('o-5')).state).toBe('shipped')
  })

  it('refuses a spawn of a machine that is not registered, and a state with invoke and spawn', async () => {
    const bad = defineMachine({
      id: 'bad',
      context: z.object({}),
      initial: 'a',
      states: {
        a: { spawn: { machine: 'nowhere' }, invoke: { activity: 'ship' } },
      },
    })
    const error = await testEngine({ machines: [bad], activities: { ship: async () => ({}) } }).catch((e: unknown) => e)
    expect(WorkflowError.is(error, 'WORKFLOW_INVALID_DEFINITION')).toBe(true)
    expect(String(error)).toContain('machine "nowhere" is not registered')
    expect(String(error)).toContain('has both invoke and spawn')
  })

  it('a retry of a parent failed while its child ran cancels that child and waits for a fresh one', async () => {
    let throws = true
    const fragile = defineMachine({
      id: 'fragile',
      context: z.object({ orderId: z.string(), tracking: z.string().optional() }),
      initial: 'shipping',
      states: {
        shipping: {
          spawn: { machine: shipment, input: (c) => ({ orderId: c.orderId }), onDone: 'shipped' },
          after: {
            '1h': {
              assign: () => {
                if (throws) throw new Error('a bug, fixed before the retry')
                return {}
              },
            },
          },
        },
        shipped: { type: 'final' },
      },
    })
    let release: (value: unknown) => void = () => undefined
    running = await testEngine({
      machines: [fragile, shipment],
      activities: { ship: () => new Promise((resolve) => (release = resolve)) },
      activityTimeout: '1d',
    })
    const { engine, clock } = running
    await engine.start(fragile, { id: 'q', input: { orderId: 'q' } })
    await clock.advance('1h')
    expect((await engine.get('q')).status).toBe('failed')
    expect((await engine.get('q/shipping/1')).status).toBe('running')
    throws = false
    await engine.retry('q')
    await clock.advance(0)
    expect((await engine.get('q/shipping/1')).status).toBe('cancelled')
    const fresh = await engine.get('q/shipping/1/r3')
    expect(fresh.status).toBe('running')
    release({ tracking: 'T-q' })
    await clock.advance(0)
    expect((await engine.get('q')).state).toBe('shipped')
    expect((await engine.history('q')).filter((h) => h.kind === 'child.done')).toHaveLength(1)
  })

  it('a fixed child id that another instance holds fails the spawn instead of waiting forever', async () => {
    const fixed = defineMachine({
      id: 'fixed',
      context: z.object({ orderId: z.string(), problem: z.string().optional() }),
      initial: 'shipping',
      states: {
        shipping: {
          spawn: {
            machine: shipment,
            id: (_, parentId) => `${parentId}-kid`,
            input: (c) => ({ orderId: c.orderId }),
            onError: { target: 'stuck', assign: (_, e) => ({ problem: e.error.code }) },
          },
          on: { LEAVE: 'away' },
        },
        away: { on: { BACK: 'shipping' } },
        stuck: { type: 'final' },
      },
    })
    running = await testEngine({ machines: [fixed, shipment], activities: { ship: () => new Promise(() => {}) } })
    const { engine, clock } = running
    await engine.start(fixed, { id: 'k', input: { orderId: 'k' } })
    await clock.advance(0)
    await engine.send('k', { type: 'LEAVE' })
    await clock.advance(0)
    expect((await engine.get('k-kid')).status).toBe('cancelled')
    await engine.send('k', { type: 'BACK' })
    await clock.advance(0)
    const parent = await engine.get('k')
    expect([parent.state, parent.context]).toEqual(['stuck', { orderId: 'k', problem: 'WORKFLOW_DUPLICATE_INSTANCE' }])
  })

  it('cancels a child whose start ran only after its parent had moved on', async () => {
    const clock = manualClock()
    const store = memoryStore()
    // An API process: no worker, so its outbox rows wait for the driving engine's poller.
    const api = await createEngine({ store, machines: [order, shipment], clock, worker: false, leaseTimeout: '10s' })
    const driver = await createEngine({
      store,
      machines: [order, shipment],
      clock,
      activities: { ship: () => new Promise(() => {}) },
      leaseTimeout: '10s',
      pollInterval: 20, // real time: the poll loop runs on timers of its own, the clock says what is due
      closeTimeout: 50,
    })
    try {
      await api.start(order, { id: 'late', input: { orderId: 'late' } })
      await driver.send('late', { type: 'GIVE_UP' })
      await clock.advance(0)
      expect((await driver.get('late')).state).toBe('gaveUp')
      await clock.advance('12s') // the start row's hold ends; the driver's poller carries it out
      await new Promise((resolve) => setTimeout(resolve, 200))
      await clock.advance(0)
      expect((await driver.get('late/shipping/1')).status).toBe('cancelled')
    } finally {
      await driver.close()
      await api.close()
    }
  })
})
