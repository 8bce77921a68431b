/** Engine behaviour beyond the store suite: messaging (listen, outbox), events, an unreachable store. */
import { sleep } from '@backplane/internal'
import { createBroker } from '@backplane/messaging'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createEngine,
  defineMachine,
  type Engine,
  type EngineOptions,
  memoryStore,
  type Store,
  type TransitionEvent,
  WorkflowError,
} from '../src/index.js'
import { order } from './fixtures/order.js'

const activities = {
  chargeCard: async (_input: unknown, ctx: { idempotencyKey: string }) => ({ chargeId: `ch-${ctx.idempotencyKey}` }),
  reserveStock: async () => ({ reserved: true }),
  refund: async () => ({ refundId: 'r-1' }),
}
const input = { orderId: 'o-1', amount: 5 }
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined)
})

async function engineWith(options: Partial<EngineOptions>): Promise<Engine> {
  const engine = await createEngine({
    store: memoryStore(),
    machines: [order],
    activities,
    pollInterval: 50,
    ...options,
  })
  closers.push(() => engine.close())
  return engine
}

describe('with @backplane/messaging', () => {
  it('publishes the outbox after the commit with stable ids, and turns messages into events once each', async () => {
    const broker = await createBroker(`memory://wf-${Math.random()}`)
    closers.push(() => broker.close())
    const shipped: { id: string; key: string | undefined; data: unknown }[] = []
    await broker.subscribe('orders.shipped', async (m) => void shipped.push({ id: m.id, key: m.key, data: m.data }), {
      from: 'earliest',
    })
    const engine = await engineWith({ broker })
    const listener = await engine.listen('carrier.events', (m) => {
      const data = m.data as { orderId: string; status: string }
      return data.status === 'delivered' ? { instance: data.orderId, event: { type: 'DELIVERED' } } : undefined
    })
    closers.push(() => listener.close())
    await engine.start(order, { id: 'o-1', input })
    await engine.send('o-1', { type: 'SUBMIT' })
    await engine.waitFor('o-1', (i) => i.state === 'shipping')
    await expect.poll(() => shipped).toEqual([{ id: 'o-1/4/1', key: 'o-1', data: { orderId: 'o-1' } }])
    // The carrier's message arrives twice (a redelivery): one transition.
    await broker.publish('carrier.events', { orderId: 'o-1', status: 'in transit' }, { id: 'carrier-evt-8' })
    await broker.publish('carrier.events', { orderId: 'o-1', status: 'delivered' }, { id: 'carrier-evt-9' })
    await broker.publish('carrier.events', { orderId: 'o-1', status: 'delivered' }, { id: 'carrier-evt-9' })
    const delivered = await engine.waitFor('o-1', (i) => i.status === 'done')
    expect(delivered.state).toBe('delivered')
    await sleep(100)
    const history = await engine.history('o-1')
    expect(history.filter((e) => e.to === 'delivered').map((e) => e.event)).toEqual([
      { type: 'DELIVERED', id: 'carrier-evt-9' },
    ])
  })

  it('dead-letters a message whose event the instance does not accept, without retrying it', async () => {
    const broker = await createBroker(`memory://wf-${Math.random()}`)
    closers.push(() => broker.close())
    const dead: string[] = []
    await broker.subscribe(
      'carrier.events.dlq',
      async (m) => void dead.push(`${m.headers['backplane-dlq-reason']}: ${m.id}`),
      { from: 'earliest' },
    )
    const engine = await engineWith({ broker })
    closers.push(async () => (await listener).close())
    const listener = engine.listen(
      'carrier.events',
      (m) => ({ instance: (m.data as { orderId: string }).orderId, event: { type: 'DELIVERED' } }),
      {
        subscribe: { maxAttempts: 3, backoff: { initialMs: 10 } },
      },
    )
    await listener
    await engine.start(order, { id: 'o-2', input })
    await broker.publish('carrier.events', { orderId: 'o-2' }, { id: 'early' })
    await broker.publish('carrier.events', { orderId: 'nobody' }, { id: 'lost' })
    await expect.poll(() => dead.sort()).toEqual(['non-retryable: early', 'non-retryable: lost'])
    expect((await engine.get('o-2')).state).toBe('created')
  })

  it('publishes again, from the outbox, what failed to publish', async () => {
    let failures = 2
    const published: string[] = []
    const broker = {
      publish: async (_topic: string, _data: unknown, options?: { id?: string }) => {
        if (failures-- > 0) throw new Error('broker down')
        published.push(options?.id as string)
      },
      subscribe: async () => ({ close: async () => undefined }),
    }
    const engine = await engineWith({ broker, leaseTimeout: 100 })
    const failed: string[] = []
    engine.events.on('outboxFailed', (e) => failed.push(`${e.id}: ${e.error.message}`))
    await engine.start(order, { id: 'o-3', input })
    await engine.send('o-3', { type: 'SUBMIT' })
    await expect.poll(() => published, { timeout: 5000 }).toEqual(['o-3/4/1'])
    expect(failed[0]).toBe('o-3/4/1: broker down')
  })
})

describe('engine events and the failure modes of the store', () => {
  it('emits transition and instanceDone events after each commit', async () => {
    const engine = await engineWith({
      broker: { publish: async () => undefined, subscribe: async () => ({ close: async () => undefined }) },
    })
    const seen: TransitionEvent[] = []
    const done: string[] = []
    engine.events.on('transition', (e) => seen.push(e))
    engine.events.on('instanceDone', (e) => done.push(`${e.instanceId}:${e.state}`))
    await engine.start(order, { id: 'o-4', input })
    await engine.send('o-4', { type: 'CANCEL', id: 'c' })
    expect(seen.map((e) => [e.kind, e.from, e.to, e.revision, e.status])).toEqual([
      ['start', null, 'created', 1, 'running'],
      ['event', 'created', 'cancelled', 2, 'done'],
    ])
    expect(done).toEqual(['o-4:cancelled'])
  })

  it('reports an unreachable store as WORKFLOW_STORE_UNAVAILABLE, loses nothing, and commits activity results once it is back', async () => {
    const inner = memoryStore()
    let down = false
    const flaky: Store = new Proxy(inner, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function' || name === 'close' || name === 'open') return value
        return (...args: unknown[]) => {
          if (down) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'))
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const engine = await engineWith({
      store: flaky,
      activities: { ...activities, chargeCard: async () => gate.then(() => ({ chargeId: 'ch-9' })) },
      broker: { publish: async () => undefined, subscribe: async () => ({ close: async () => undefined }) },
    })
    const errors: string[] = []
    engine.events.on('error', (e) => errors.push(e.message))
    await engine.start(order, { id: 'o-5', input })
    await engine.send('o-5', { type: 'SUBMIT', id: 's-1' })
    down = true
    const error = await engine.send('o-5', { type: 'CANCEL', id: 'c-1' }).catch((e: unknown) => e)
    expect(WorkflowError.is(error, 'WORKFLOW_STORE_UNAVAILABLE')).toBe(true)
    expect((error as Error).message).toMatch(/ECONNREFUSED/)
    release() // the charge completes while the store is down: its result waits
    await expect.poll(() => errors.length).toBeGreaterThan(0)
    down = false
    const shipped = await engine.waitFor<{ chargeId?: string }>('o-5', (i) => i.state === 'shipping', {
      timeout: 10_000,
    })
    expect(shipped.context.chargeId).toBe('ch-9')
    expect((await engine.history('o-5')).map((e) => e.to)).toEqual(['created', 'paymentPending', 'paid', 'shipping'])
    // The failed send was not committed; sent again with its id it applies once.
    expect(await engine.send('o-5', { type: 'DELIVERED', id: 'd-1' })).toMatchObject({ status: 'applied' })
  })

  it('refuses every call after close with WORKFLOW_CLOSED', async () => {
    const engine = await engineWith({
      broker: { publish: async () => undefined, subscribe: async () => ({ close: async () => undefined }) },
    })
    await engine.close()
    const error = await engine.start(order, { id: 'late', input }).catch((e: unknown) => e)
    expect(WorkflowError.is(error, 'WORKFLOW_CLOSED')).toBe(true)
  })

  it('runs a machine typed from its zod schema end to end without activities', async () => {
    const light = defineMachine({
      id: 'light',
      context: z.object({ cycles: z.number() }),
      initial: 'green',
      states: {
        green: { after: { '20ms': 'yellow' } },
        yellow: { after: { '20ms': { target: 'red', assign: (c) => ({ cycles: c.cycles + 1 }) } } },
        red: { on: { STOP: 'off' }, after: { '20ms': 'green' } },
        off: { type: 'final' },
      },
    })
    const engine = await createEngine({ store: memoryStore(), machines: [light] })
    closers.push(() => engine.close())
    await engine.start(light, { id: 'l-1', input: { cycles: 0 } })
    const red = await engine.waitFor<{ cycles: number }>('l-1', (i) => i.context.cycles >= 2 && i.state === 'red')
    expect(red.timers).toHaveLength(1)
    await engine.send('l-1', { type: 'STOP' })
    expect((await engine.get('l-1')).status).toBe('done')
  })
})
