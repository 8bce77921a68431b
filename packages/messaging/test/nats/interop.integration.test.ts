/**
 * Interop with a plain nats.js v3 client (`@nats-io/transport-node`, `@nats-io/jetstream`), in
 * core NATS and in JetStream: it reads what our adapter publishes (CloudEvents `ce-*` headers,
 * the key URI-encoded in `backplane-key`, the body) and publishes what our subscriber reads as
 * the same event. Only the public API on our side, so that it holds whichever nats.js the
 * adapter is built on.
 */
import { randomUUID } from 'node:crypto'
import { type Broker, createBroker, type Message } from '@backplane/messaging'
import { until } from '@backplane/messaging/testing'
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import {
  canonicalMIMEHeaderKey,
  connect,
  headers,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireEnv } from '../env.js'

const natsUrl = requireEnv('NATS_URL')
const SOURCE = '/interop/nats-tests'
const unique = (what: string) => `interop.${what}.${randomUUID().slice(0, 8)}`
const order = { id: 42, lines: [{ sku: 'A-1', qty: 2 }], note: 'deliver to Łódź' }
const KEY = 'customer 7 / Zoë'

let nc: NatsConnection
let js: JetStreamClient
let jsm: JetStreamManager
// Topics whose streams the JetStream tests made: deleted at the end, the server is shared.
const jetStreamTopics: string[] = []
const brokers: Broker[] = []

beforeAll(async () => {
  nc = await connect({ servers: natsUrl, name: 'interop-plain-v3' })
  js = jetstream(nc)
  jsm = await jetstreamManager(nc)
})
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()))
  for (const topic of jetStreamTopics) {
    const stream = await jsm.streams.find(topic).catch(() => undefined)
    if (stream) await jsm.streams.delete(stream)
  }
  await nc?.close()
})

async function open(query = ''): Promise<Broker> {
  const broker = await createBroker(`${natsUrl}${query}`, { source: SOURCE })
  brokers.push(broker)
  return broker
}

/** What every message from our adapter carries, checked on the plain client's side. */
function expectOurHeaders(h: MsgHdrs | undefined, expected: { id: string; type: string; window: [number, number] }) {
  expect(h).toBeDefined()
  const names = h?.keys() ?? []
  expect(names).toEqual(
    expect.arrayContaining(['ce-id', 'ce-source', 'ce-type', 'ce-specversion', 'ce-time', 'content-type']),
  )
  // NATS, like HTTP, spells them ce-*: no Kafka-style ce_* name.
  expect(names.filter((n) => n.startsWith('ce_'))).toEqual([])
  expect(h?.get('ce-id')).toBe(expected.id)
  expect(h?.get('ce-source')).toBe(SOURCE)
  expect(h?.get('ce-type')).toBe(expected.type)
  expect(h?.get('ce-specversion')).toBe('1.0')
  expect(h?.get('content-type')).toBe('application/json')
  const time = Date.parse(h?.get('ce-time') ?? '')
  expect(time).toBeGreaterThanOrEqual(expected.window[0])
  expect(time).toBeLessThanOrEqual(expected.window[1])
  expect(h?.get('tenant')).toBe('acme')
  expect(h?.get('x-city')).toBe('Łódź')
  expect(h?.get('backplane-key')).toBe(encodeURIComponent(KEY))
}

// Yesterday: a time our subscriber could not have made up.
const EVENT_TIME = new Date(Date.now() - 86_400_000).toISOString()

/**
 * CloudEvents headers as a plain publisher writes them; `key` travels URI-encoded, as our adapter
 * expects. `canonical` spells the names as MIME headers (`Ce-Id`), as some clients do.
 */
function plainHeaders(id: string, key?: string, canonical = false): MsgHdrs {
  const h = headers()
  const set = (name: string, value: string) => h.set(canonical ? canonicalMIMEHeaderKey(name) : name, value)
  set('ce-id', id)
  set('ce-source', '/plain-nats')
  set('ce-type', 'com.example.order.created')
  set('ce-specversion', '1.0')
  set('ce-time', EVENT_TIME)
  set('content-type', 'application/json')
  set('x-city', 'Łódź')
  if (key !== undefined) set('backplane-key', encodeURIComponent(key))
  return h
}

/** What our subscriber must make of a message `plainHeaders` wrote. */
/** The message of `got` with this id is the plain client's event: same id, key and data. */
function expectSameEvent(got: Message[], id: string, key: string | undefined) {
  const message = got.find((m) => m.id === id)
  expect(message).toBeDefined()
  expect(message?.id).toBe(id)
  expect(message?.key).toBe(key)
  expect(message?.data).toEqual(order)
  expect(message?.headers).toMatchObject({
    'ce-id': id,
    'ce-source': '/plain-nats',
    'ce-type': 'com.example.order.created',
    'ce-specversion': '1.0',
    'ce-time': EVENT_TIME,
    'content-type': 'application/json',
    'x-city': 'Łódź',
  })
  expect(message?.publishedAt.toISOString()).toBe(EVENT_TIME)
  expect(message?.headers).not.toHaveProperty('backplane-key')
}

describe('core NATS', () => {
  it('our adapter publishes, a plain subscription reads headers, key and body', async () => {
    const broker = await open()
    const topic = unique('core-out')
    const got: Msg[] = []
    const sub = nc.subscribe(topic, { callback: (_error, msg) => void got.push(msg) })
    await nc.flush()
    const before = Date.now()
    const { id } = await broker.publish(topic, order, { key: KEY, headers: { Tenant: 'acme', 'x-city': 'Łódź' } })
    const after = Date.now()
    await until(() => got.length === 1, 5_000, 'the message on the plain subscription')
    sub.unsubscribe()
    const [msg] = got as [Msg]
    expect(msg.subject).toBe(topic)
    expectOurHeaders(msg.headers, { id, type: topic, window: [before, after] })
    expect(decodeURIComponent(msg.headers?.get('backplane-key') ?? '')).toBe(KEY)
    expect(msg.string()).toBe(JSON.stringify(order))
  })

  it('a plain client publishes, our subscriber gets the same event, with the key when backplane-key is set, in any case', async () => {
    const broker = await open()
    const topic = unique('core-in')
    const got: Message[] = []
    const sub = await broker.subscribe(topic, (m) => void got.push(m))
    const [withKey, withoutKey, canonical] = [randomUUID(), randomUUID(), randomUUID()]
    nc.publish(topic, JSON.stringify(order), { headers: plainHeaders(withKey, KEY) })
    nc.publish(topic, JSON.stringify(order), { headers: plainHeaders(withoutKey) })
    nc.publish(topic, JSON.stringify(order), { headers: plainHeaders(canonical, KEY, true) })
    await nc.flush()
    await until(() => got.length === 3, 5_000, 'the three plain messages')
    await sub.close()
    // Names are read case-insensitively: `Ce-Id`, `Backplane-Key` count as `ce-id`, `backplane-key`.
    expectSameEvent(got, canonical, KEY)
    expectSameEvent(got, withKey, KEY)
    expectSameEvent(got, withoutKey, undefined)
  })
})

describe('JetStream', () => {
  it("our adapter publishes, a plain consumer on the adapter's stream reads headers, key and body", async () => {
    const broker = await open('?jetstream=true')
    const topic = unique('js-out')
    jetStreamTopics.push(topic)
    const before = Date.now()
    const { id } = await broker.publish(topic, order, { key: KEY, headers: { Tenant: 'acme', 'x-city': 'Łódź' } })
    const after = Date.now()
    // The stream our adapter made for the topic, whatever it named it.
    const stream = await jsm.streams.find(topic)
    const consumer = await js.consumers.get(stream)
    const msg = await consumer.next({ expires: 5_000 })
    expect(msg).not.toBeNull()
    expect(msg?.subject).toBe(topic)
    expectOurHeaders(msg?.headers, { id, type: topic, window: [before, after] })
    expect(msg?.string()).toBe(JSON.stringify(order))
    await consumer.delete().catch(() => undefined)
  })

  it('a plain js.publish to the stream, our group gets the same event, with the key when backplane-key is set', async () => {
    const broker = await open('?jetstream=true')
    const topic = unique('js-in')
    jetStreamTopics.push(topic)
    const got: Message[] = []
    // Subscribing makes the stream: before that a JetStream publish has no stream to go to.
    const sub = await broker.subscribe(topic, (m) => void got.push(m), { group: 'interop', from: 'earliest' })
    const [withKey, withoutKey] = [randomUUID(), randomUUID()]
    const acks = [
      await js.publish(topic, JSON.stringify(order), { headers: plainHeaders(withKey, KEY) }),
      await js.publish(topic, JSON.stringify(order), { headers: plainHeaders(withoutKey) }),
    ]
    const stream = await jsm.streams.find(topic)
    expect(acks.map((a) => a.stream)).toEqual([stream, stream])
    await until(() => got.length === 2, 10_000, 'both plain messages')
    await sub.close()
    expectSameEvent(got, withKey, KEY)
    expectSameEvent(got, withoutKey, undefined)
    expect(got.map((m) => m.attempt)).toEqual([1, 1])
  })
})
