import { randomUUID } from 'node:crypto'
import { brokerConformance, until } from '@backplane/messaging/testing'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNatsTransport, streamNameFor } from '../../src/adapters/nats/index.js'
import { type Broker, createBroker, createBrokerOver } from '../../src/index.js'
import { privateNats } from './private-server.js'

// This file kills and restarts NATS: a server of its own.
const server = privateNats(42251)
const natsUrl = server.url
const services = server.services
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const topic = (what: string) => `nats.${what}.${randomUUID().slice(0, 8)}`

await services('up')
afterAll(async () => {
  await server.remove()
})

async function withJetStream<T>(fn: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: natsUrl })
  try {
    return await fn(await jetstreamManager(nc))
  } finally {
    await nc.close()
  }
}

/** Crash and restart: SIGKILL, then start on the same port and JetStream store (services.sh keeps both). */
async function restart(): Promise<void> {
  await services('kill')
  await services('up')
}

brokerConformance('nats-jetstream', { connect: () => createBroker(`${natsUrl}?jetstream=true`), restart })

describe('core NATS (no JetStream): at most once', () => {
  let broker: Broker
  beforeAll(async () => {
    broker = await createBroker(natsUrl)
  })
  afterAll(async () => {
    await broker.close()
  })

  it('reports what it cannot do', () => {
    expect(broker.health()).toMatchObject({
      state: 'connected',
      system: 'nats',
      capabilities: { durable: false, replay: false, ordering: 'topic', atLeastOnce: false },
    })
  })

  it('delivers to every subscriber, with key and headers', async () => {
    const t = topic('fanout')
    const a: unknown[] = []
    const b: unknown[] = []
    const subs = [
      await broker.subscribe(t, (m) => void a.push([m.data, m.key, m.headers.tenant])),
      await broker.subscribe(t, (m) => void b.push(m.data)),
    ]
    await broker.publish(t, { n: 1 }, { key: 'k 1', headers: { Tenant: 'line\nbreak' } })
    await until(() => a.length === 1 && b.length === 1, 5_000, 'both subscribers')
    expect(a).toEqual([[{ n: 1 }, 'k 1', 'line break']])
    await Promise.all(subs.map((s) => s.close()))
  })

  it('shares a queue group among its members', async () => {
    const t = topic('queue')
    const a: number[] = []
    const b: number[] = []
    const all: number[] = []
    const subs = [
      await broker.subscribe<number>(t, (m) => void a.push(m.data), { group: 'workers', retry: { maxAttempts: 1 } }),
      await broker.subscribe<number>(t, (m) => void b.push(m.data), { group: 'workers', retry: { maxAttempts: 1 } }),
      await broker.subscribe<number>(t, (m) => void all.push(m.data)),
    ]
    await broker.publishBatch(
      t,
      Array.from({ length: 40 }, (_, i) => ({ data: i })),
    )
    await until(() => a.length + b.length === 40 && all.length === 40, 5_000, '40 messages')
    expect([...a, ...b].sort((x, y) => x - y)).toEqual([...Array(40).keys()])
    expect(a.length).toBeGreaterThan(0)
    expect(b.length).toBeGreaterThan(0)
    await Promise.all(subs.map((s) => s.close()))
  })

  it('refuses a group with retries: core NATS cannot redeliver', async () => {
    await expect(broker.subscribe(topic('retry'), () => {}, { group: 'g' })).rejects.toMatchObject({
      code: 'MESSAGING_UNSUPPORTED',
      message: expect.stringContaining('jetstream=true'),
    })
    await expect(
      broker.subscribe(topic('retry'), () => {}, { group: 'g', retry: { maxAttempts: 4 } }),
    ).rejects.toMatchObject({
      code: 'MESSAGING_UNSUPPORTED',
    })
  })

  it("refuses from: 'earliest': the server keeps nothing", async () => {
    await expect(broker.subscribe(topic('earliest'), () => {}, { from: 'earliest' })).rejects.toMatchObject({
      code: 'MESSAGING_UNSUPPORTED',
      message: expect.stringContaining('?jetstream=true'),
    })
  })

  it('loses a message published while no one subscribes', async () => {
    const t = topic('gone')
    await broker.publish(t, 'nobody listens')
    const got: unknown[] = []
    const sub = await broker.subscribe(t, (m) => void got.push(m.data))
    await broker.publish(t, 'heard')
    await until(() => got.length === 1, 5_000, 'the second message')
    await sleep(100)
    expect(got).toEqual(['heard'])
    await sub.close()
  })

  it('comes back by itself after the server restarts: subscriptions are re-sent', async () => {
    const own = await createBroker(natsUrl)
    const states: string[] = []
    own.events.on('disconnected', () => states.push('disconnected'))
    own.events.on('connected', () => states.push('connected'))
    const t = topic('restart')
    const got = new Set<number>()
    const sub = await own.subscribe<number>(t, (m) => void got.add(m.data))
    await own.publish(t, 0)
    await until(() => got.has(0), 5_000, 'the first message')
    await restart()
    // At most once: what is published around the restart may be lost or rejected; later ones arrive.
    let n = 1
    const deadline = Date.now() + 15_000
    while (got.size < 2 && Date.now() < deadline) {
      await own.publish(t, n++).catch(() => undefined)
      await sleep(50)
    }
    expect(got.size).toBeGreaterThanOrEqual(2)
    expect(states).toEqual(expect.arrayContaining(['disconnected', 'connected']))
    expect(own.health().state).toBe('connected')
    await sub.close()
    await own.close()
  })

  it('refuses topics that are not NATS subjects', async () => {
    await expect(broker.publish('orders.*', 1)).rejects.toMatchObject({ code: 'MESSAGING_INVALID_MESSAGE' })
    await expect(broker.subscribe('has space', () => {})).rejects.toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS' })
  })
})

describe('JetStream specifics', () => {
  const opened: Broker[] = []
  const open = async (query = '') => {
    const broker = await createBroker(`${natsUrl}?jetstream=true${query}`)
    opened.push(broker)
    return broker
  }
  afterAll(async () => {
    await Promise.all(opened.map((b) => b.close()))
  })

  it('gives a plain subscriber every message through an ephemeral consumer it removes at close', async () => {
    const broker = await open()
    const t = topic('plain')
    const a: number[] = []
    const b: number[] = []
    const subs = [
      await broker.subscribe<number>(t, (m) => void a.push(m.data)),
      await broker.subscribe<number>(t, (m) => void b.push(m.data)),
    ]
    await broker.publishBatch(
      t,
      Array.from({ length: 10 }, (_, i) => ({ data: i })),
    )
    await until(() => a.length === 10 && b.length === 10, 10_000, 'both subscribers')
    expect(a).toEqual([...Array(10).keys()])
    expect(b).toEqual([...Array(10).keys()])
    await Promise.all(subs.map((s) => s.close()))
    const consumers = await withJetStream(async (jsm) => jsm.consumers.list(streamNameFor(t)).next())
    expect(consumers).toEqual([])
  })

  it('keeps a message published before any subscriber, for a group starting at the earliest', async () => {
    const broker = await open()
    const t = topic('kept')
    await broker.publish(t, 'stored')
    const got: unknown[] = []
    const sub = await broker.subscribe(t, (m) => void got.push(m.data), { group: 'late', from: 'earliest' })
    await until(() => got.length === 1, 10_000, 'the stored message')
    expect(got).toEqual(['stored'])
    await sub.close()
  })

  it('redelivers what a member released to the group, counting the redelivery', async () => {
    const transport = await createNatsTransport({ servers: [natsUrl], jetstream: true })
    const broker = createBrokerOver(transport)
    opened.push(broker)
    const t = topic('release')
    const seen: number[] = []
    const sub = await transport.subscribe(t, { group: 'g', from: 'earliest', maxInFlight: 1 }, async (delivery) => {
      seen.push(delivery.redeliveries)
      if (delivery.redeliveries === 0) await delivery.release()
      else await delivery.ack()
    })
    await broker.publish(t, 'again')
    await until(() => seen.length === 2, 10_000, 'the redelivery')
    expect(seen).toEqual([0, 1])
    await sub.close()
  })

  it('with brokerDedupe, JetStream itself drops a second message with the same id', async () => {
    const broker = await open('&brokerDedupe=true')
    const t = topic('brokerdedupe')
    const got: string[] = []
    const sub = await broker.subscribe(t, (m) => void got.push(m.id), { group: 'g' })
    await broker.publish(t, 1, { id: 'same' })
    await broker.publish(t, 1, { id: 'same' })
    await broker.publish(t, 2, { id: 'other' })
    await until(() => got.length === 2, 10_000, 'two messages')
    await sleep(200)
    expect(got).toEqual(['same', 'other'])
    await sub.close()
  })

  it('re-creates its consumers and stream when they are deleted behind its back', async () => {
    const broker = await open()
    const t = topic('deleted')
    const group: number[] = []
    const plain: number[] = []
    const subs = [
      await broker.subscribe<number>(t, (m) => void group.push(m.data), { group: 'g' }),
      await broker.subscribe<number>(t, (m) => void plain.push(m.data)),
    ]
    await broker.publish(t, 1)
    await until(() => group.length === 1 && plain.length === 1, 10_000, 'the first message')
    await withJetStream(async (jsm) => {
      for (const c of await jsm.consumers.list(streamNameFor(t)).next())
        await jsm.consumers.delete(c.stream_name, c.name)
    })
    await sleep(300)
    await broker.publish(t, 2)
    await until(() => group.includes(2) && plain.includes(2), 15_000, 'delivery from re-created consumers')
    await withJetStream((jsm) => jsm.streams.delete(streamNameFor(t)))
    await broker.publish(t, 3) // re-creates the stream
    await until(() => group.includes(3) && plain.includes(3), 15_000, 'delivery after the stream came back')
    expect(plain).toEqual([1, 2, 3])
    await Promise.all(subs.map((s) => s.close()))
  })

  it('while the server is away, a publish waits up to `timeout` and then rejects; then group and plain consumers resume', async () => {
    const broker = await open('&timeout=1s')
    const t = topic('away')
    const got: unknown[] = []
    const plain: unknown[] = []
    const subs = [
      await broker.subscribe(t, (m) => void got.push(m.data), { group: 'g' }),
      await broker.subscribe(t, (m) => void plain.push(m.data)),
    ]
    await services('kill')
    try {
      const started = Date.now()
      await expect(broker.publish(t, 'lost')).rejects.toMatchObject({ code: 'MESSAGING_TIMEOUT' })
      expect(Date.now() - started).toBeLessThan(2_500)
      expect(broker.health().state).toBe('disconnected')
    } finally {
      await services('up')
    }
    await until(() => broker.health().state === 'connected', 10_000, 'the reconnect')
    await broker.publish(t, 'back')
    await until(() => got.includes('back') && plain.includes('back'), 10_000, 'the message after the restart')
    await Promise.all(subs.map((s) => s.close()))
  })

  it('publishes a batch quickly: all PubAcks awaited together', async () => {
    const broker = await open()
    const t = topic('batch')
    await broker.publish(t, 'warm-up')
    const started = performance.now()
    await broker.publishBatch(
      t,
      Array.from({ length: 1000 }, (_, i) => ({ data: i, key: `k${i % 10}` })),
    )
    const ms = performance.now() - started
    console.info(`nats: 1000 JetStream publishes in one batch took ${ms.toFixed(0)} ms`)
    expect(ms).toBeLessThan(2_000)
  })
})
