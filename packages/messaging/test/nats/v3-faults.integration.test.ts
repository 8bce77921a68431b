/**
 * Why the NATS adapter still has code of its own over nats.js v3 (`@nats-io/transport-node`,
 * `@nats-io/jetstream`): each test runs one scenario on the plain v3 client, as its README shows
 * it, and on our adapter, and asserts what each does.
 *
 * - A server restart: plain `consume()` resumes by itself (v3 no longer has the stall that made
 *   us pull on our own), and so does our pull loop.
 * - Stopping a consumer: plain `consume()` leaves what it had pulled leased to nobody until
 *   `ackWait` (30 s), so a graceful close needs our own loop (pull-loop.ts), which fetches known
 *   batches and hands back what it did not hand over.
 * - Publishing while the server is away: nats.js empties its outbound buffer at every reconnect
 *   attempt, so a plain `js.publish` made while disconnected is lost (it times out though the
 *   server is back long before); our publish path (jetstream.ts with pubacks.ts) waits for the
 *   connection and sends again what was not acknowledged.
 *
 * It restarts NATS, so it runs its own server (same script, own directory and ports).
 */
import { randomUUID } from 'node:crypto'
import { until } from '@backplane/messaging/testing'
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { streamNameFor } from '../../src/adapters/nats/index.js'
import { type Broker, createBroker } from '../../src/index.js'
import { privateNats } from './private-server.js'

// This file kills and restarts NATS: a server of its own.
const server = privateNats(42261)
const natsUrl = server.url
const services = server.services
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const topic = (what: string) => `v3.${what}.${randomUUID().slice(0, 8)}`

await services('up')

// The plain client, with nats.js's defaults.
let nc: NatsConnection
let js: JetStreamClient
let jsm: JetStreamManager
const brokers: Broker[] = []
const open = async (query = '') => {
  const broker = await createBroker(`${natsUrl}?jetstream=true${query}`)
  brokers.push(broker)
  return broker
}
beforeAll(async () => {
  nc = await connect({ servers: natsUrl })
  js = jetstream(nc)
  jsm = await jetstreamManager(nc)
})
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()))
  await nc?.close()
  await server.remove()
})

/** Resolves at the plain connection's next status of `type`. */
function nextStatus(type: 'disconnect' | 'reconnect'): Promise<void> {
  const statuses = nc.status()
  return (async () => {
    for await (const status of statuses) if (status.type === type) break
  })()
}

async function streamWithDurable(subject: string): Promise<string> {
  const stream = `V3_${randomUUID().slice(0, 8)}`
  await jsm.streams.add({ name: stream, subjects: [subject] })
  await jsm.consumers.add(stream, {
    durable_name: 'g',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  })
  return stream
}

describe('nats.js v3 against our adapter', () => {
  it('after a server restart plain consume() resumes by itself (v3 no longer stalls), as our subscription does', async () => {
    const plainTopic = topic('restart-plain')
    const stream = await streamWithDurable(plainTopic)
    const plain = new Set<string>()
    const messages = await (await js.consumers.get(stream, 'g')).consume()
    void (async () => {
      for await (const m of messages) {
        plain.add(m.string())
        m.ack()
      }
    })()
    const broker = await open()
    const ourTopic = topic('restart-ours')
    const ours = new Set<number>()
    await broker.subscribe<number>(ourTopic, (m) => void ours.add(m.data), { group: 'g', from: 'earliest' })
    await js.publish(plainTopic, 'before')
    await broker.publish(ourTopic, -1)
    await until(() => plain.size === 1 && ours.size === 1, 5_000, 'the first message on each side')

    const back = nextStatus('reconnect')
    await services('kill')
    await services('up')
    await back
    await until(() => broker.health().state === 'connected', 10_000, 'our reconnect')
    // Published from the plain connection after it is back (with an id: a retry is stored once).
    for (let i = 0; i < 5; i++) {
      for (let tries = 0; ; tries++) {
        try {
          await js.publish(plainTopic, `after-${i}`, { msgID: `after-${i}`, timeout: 2_000 })
          break
        } catch (error) {
          if (tries > 5) throw error
        }
      }
      await broker.publish(ourTopic, i)
    }
    const started = Date.now()
    await until(() => plain.size === 6 && ours.size === 6, 10_000, 'the messages published after the restart')
    console.info(
      `nats v3: plain consume() got the 5 messages published after the restart in ${Date.now() - started} ms`,
    )
    expect([...plain].sort()).toEqual(['after-0', 'after-1', 'after-2', 'after-3', 'after-4', 'before'])
    expect([...ours].sort()).toEqual([-1, 0, 1, 2, 3, 4])
    await messages.close()
  })

  it('a stopped plain consume() strands what it pulled until ackWait; our close hands it back to the group', async () => {
    const plainTopic = topic('close-plain')
    const stream = await streamWithDurable(plainTopic)
    for (let i = 0; i < 30; i++) await js.publish(plainTopic, String(i))
    const plain = new Set<string>()
    const first = await (await js.consumers.get(stream, 'g')).consume({ max_messages: 10 })
    for await (const m of first) {
      plain.add(m.string())
      m.ack()
      if (plain.size === 3) break // stops the consumer, as the README says
    }
    const second = await (await js.consumers.get(stream, 'g')).consume({ max_messages: 10 })
    void (async () => {
      for await (const m of second) {
        plain.add(m.string())
        m.ack()
      }
    })()

    const broker = await open()
    const ourTopic = topic('close-ours')
    await broker.publishBatch(
      ourTopic,
      Array.from({ length: 30 }, (_, i) => ({ data: i })),
    )
    const ours: number[] = []
    const handler = async (m: { data: number }) => {
      await sleep(10)
      ours.push(m.data)
    }
    const member = await broker.subscribe<number>(ourTopic, handler, { group: 'g', from: 'earliest', concurrency: 2 })
    await until(() => ours.length >= 3, 5_000, 'three handled')
    await member.close()
    await broker.subscribe<number>(ourTopic, handler, { group: 'g', from: 'earliest', concurrency: 2 })

    // Both sides get 3 s, a tenth of ackWait (30 s, the default on both).
    await sleep(3_000)
    const stranded = (await jsm.consumers.info(stream, 'g')).num_ack_pending
    expect(stranded).toBeGreaterThan(0)
    expect(plain.size + stranded).toBe(30)
    console.info(`nats v3: a stopped consume() left ${stranded} of 30 messages leased until ackWait`)
    expect([...ours].sort((a, b) => a - b)).toEqual([...Array(30).keys()])
    await second.close()
  })

  it('a plain js.publish made while the server is away is lost at the reconnect; ours is stored once', async () => {
    const plainTopic = topic('publish-plain')
    const plainStream = `V3_${randomUUID().slice(0, 8)}`
    await jsm.streams.add({ name: plainStream, subjects: [plainTopic] })
    const broker = await open('&timeout=4s')
    const ourTopic = topic('publish-ours')
    await broker.publish(ourTopic, 'before') // creates its stream
    await js.publish(plainTopic, 'before')

    const down = nextStatus('disconnect')
    await services('kill')
    await down
    await until(() => broker.health().state === 'disconnected', 5_000, 'our side to see the server gone')
    const plainOutcome = Promise.all(
      [0, 1, 2].map((i) =>
        js.publish(plainTopic, `while-down-${i}`, { msgID: `down-${i}`, timeout: 4_000 }).then(
          () => 'stored',
          (error: Error) => error.name,
        ),
      ),
    )
    const ourOutcome = Promise.all(
      [0, 1, 2].map((i) =>
        broker.publish(ourTopic, `while-down-${i}`).then(
          () => 'stored',
          (error: Error) => error.name,
        ),
      ),
    )
    await sleep(1_000)
    await services('up')

    // The server was back within about a second, well inside the 4 s both sides wait.
    expect(await plainOutcome).toEqual(['TimeoutError', 'TimeoutError', 'TimeoutError'])
    expect((await jsm.streams.info(plainStream)).state.messages).toBe(1)
    expect(await ourOutcome).toEqual(['stored', 'stored', 'stored'])
    expect((await jsm.streams.info(streamNameFor(ourTopic))).state.messages).toBe(4)
  })
})
