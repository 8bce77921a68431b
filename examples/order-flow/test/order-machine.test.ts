// The order saga on its own: every path of the machine, with the in-memory store and a manual
// clock, the services replaced by events sent by hand.
import { randomUUID } from 'node:crypto'
import { type Broker, createBroker } from '@backplane/messaging'
import { createEngine, type Engine, manualClock, memoryStore } from '@backplane/workflow'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { orderMachine } from '../src/order-machine.js'

const order = orderMachine({ paymentTimeout: '30s' })
const input = (orderId: string) => ({
  orderId,
  customerId: 'c-1',
  items: [{ sku: 'mug', qty: 2 }],
  amountCents: 2400,
  createdAt: 0,
})

describe('order machine', () => {
  let broker: Broker
  let engine: Engine
  let clock: ReturnType<typeof manualClock>
  const published: { topic: string; data: unknown }[] = []

  beforeEach(async () => {
    published.length = 0
    broker = await createBroker(`memory://order-machine-${randomUUID()}`)
    for (const topic of [
      'orders.created',
      'inventory.reserve',
      'inventory.release',
      'payments.refund',
      'shipments.create',
    ])
      await broker.subscribe(topic, async (m) => void published.push({ topic, data: m.data }))
    clock = manualClock()
    engine = await createEngine({ store: memoryStore(), machines: [order], broker, clock, unhandledEvents: 'ignore' })
  })
  afterEach(async () => {
    await engine.close()
    await broker.close()
  })

  const start = async (id: string) => {
    await engine.start(order, { id, input: input(id) })
    await engine.send(id, { type: 'SUBMIT', id: `submit/${id}` })
  }
  const path = async (id: string) => (await engine.history(id)).filter((h) => h.kind !== 'ignored').map((h) => h.to)
  const commands = async (count: number) => {
    for (let i = 0; i < 100 && published.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    return published.map((p) => p.topic)
  }

  it('delivers: payment, stock, shipment, delivery', async () => {
    await start('o-1')
    await engine.send('o-1', { type: 'PAYMENT_COMPLETED', chargeId: 'ch-1' })
    await engine.send('o-1', { type: 'STOCK_RESERVED' })
    await engine.send('o-1', { type: 'SHIPMENT_CREATED', shipmentId: 'shp-1' })
    await engine.send('o-1', { type: 'DELIVERED', shipmentId: 'shp-1' })
    expect(await path('o-1')).toEqual(['created', 'paymentPending', 'paid', 'stockReserved', 'shipping', 'delivered'])
    expect((await engine.get('o-1')).context).toMatchObject({ chargeId: 'ch-1', shipmentId: 'shp-1' })
    expect(await commands(3)).toEqual(['orders.created', 'inventory.reserve', 'shipments.create'])
  })

  it('accepts the delivery before the shipment confirmation (messages of two topics are not ordered)', async () => {
    await start('o-2')
    await engine.send('o-2', { type: 'PAYMENT_COMPLETED', chargeId: 'ch-2' })
    await engine.send('o-2', { type: 'STOCK_RESERVED' })
    await engine.send('o-2', { type: 'DELIVERED', shipmentId: 'shp-2' })
    const late = await engine.send('o-2', { type: 'SHIPMENT_CREATED', shipmentId: 'shp-2' })
    expect(late.status).toBe('ignored')
    expect((await engine.get('o-2')).state).toBe('delivered')
  })

  it('cancels on a declined card without a refund', async () => {
    await start('o-3')
    await engine.send('o-3', { type: 'PAYMENT_FAILED', reason: 'card declined' })
    expect(await path('o-3')).toEqual(['created', 'paymentPending', 'cancelled'])
    expect((await engine.get('o-3')).context).toMatchObject({ reason: 'card declined' })
  })

  it('refunds a paid order whose stock ran out (compensation)', async () => {
    await start('o-4')
    await engine.send('o-4', { type: 'PAYMENT_COMPLETED', chargeId: 'ch-4' })
    await engine.send('o-4', { type: 'STOCK_REJECTED', reason: 'out of stock: Limited edition print' })
    await engine.send('o-4', { type: 'REFUNDED', refundedCents: 2400 })
    expect(await path('o-4')).toEqual(['created', 'paymentPending', 'paid', 'refunding', 'cancelled'])
    expect(await commands(3)).toEqual(['orders.created', 'inventory.reserve', 'payments.refund'])
  })

  it('voids the payment when it does not answer in time (a durable timer)', async () => {
    await start('o-5')
    await clock.advance(29_000)
    expect((await engine.get('o-5')).state).toBe('paymentPending')
    await clock.advance(1_000)
    const refunding = await engine.waitFor('o-5', (i) => i.state === 'refunding', { timeout: 2_000 })
    expect(refunding.context).toMatchObject({ reason: 'payment timed out' })
    // The charge arrives after all: ignored, the refund (void) decides.
    expect((await engine.send('o-5', { type: 'PAYMENT_COMPLETED', chargeId: 'late' })).status).toBe('ignored')
    await engine.send('o-5', { type: 'REFUNDED', refundedCents: 0 })
    expect((await engine.get('o-5')).state).toBe('cancelled')
  })

  it('releases stock, then refunds, when cancelled after payment; refuses to cancel once shipping', async () => {
    await start('o-6')
    await engine.send('o-6', { type: 'PAYMENT_COMPLETED', chargeId: 'ch-6' })
    await engine.send('o-6', { type: 'CANCEL' })
    await engine.send('o-6', { type: 'STOCK_RELEASED' })
    await engine.send('o-6', { type: 'REFUNDED', refundedCents: 2400 })
    expect(await path('o-6')).toEqual(['created', 'paymentPending', 'paid', 'releasing', 'refunding', 'cancelled'])

    await start('o-7')
    await engine.send('o-7', { type: 'PAYMENT_COMPLETED', chargeId: 'ch-7' })
    await engine.send('o-7', { type: 'STOCK_RESERVED' })
    await engine.send('o-7', { type: 'SHIPMENT_CREATED', shipmentId: 'shp-7' })
    await expect(engine.send('o-7', { type: 'CANCEL' }, { unhandledEvents: 'reject' })).rejects.toMatchObject({
      code: 'WORKFLOW_EVENT_NOT_ACCEPTED',
    })
  })
})
