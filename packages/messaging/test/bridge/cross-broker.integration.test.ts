/** A route from a topic published over HTTP (memory broker) to one Kafka and one NATS JetStream topic. */
import { randomUUID } from 'node:crypto'
import { context, propagation } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { afterAll, expect, it } from 'vitest'
import type { Broker, Message } from '../../src/index.js'
import { requireEnv } from '../env.js'
import { startBridge, unique, until } from './helpers.js'

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())

const KEY = 'cross-broker-key-0123456789'
const bridge = await startBridge(
  {
    brokers: {
      http: `memory://cross-${randomUUID().slice(0, 8)}`,
      kafka: { url: `kafka://${requireEnv('KAFKA_BROKERS')}`, kafka: { sessionTimeout: 6000, maxWaitTime: 100 } },
      nats: `${requireEnv('NATS_URL')}?jetstream=true`,
    },
    auth: {
      keys: [{ id: 'router', key: KEY, publish: ['http.*', 'kafka:orders.*', 'nats:orders.*'], subscribe: ['http.*'] }],
    },
    store: false,
  },
  KEY,
)
afterAll(() => bridge.close())

it('fans an HTTP topic out to a Kafka topic and a NATS topic, keeping id, key, type and trace', async () => {
  const source = unique('http.orders')
  const [kafkaTopic, natsTopic] = [unique('orders.kafka'), unique('orders.new')]
  const got: { kafka: Message<unknown>[]; nats: Message<unknown>[] } = { kafka: [], nats: [] }
  const kafka = bridge.bridge.brokers.get('kafka') as Broker
  const nats = bridge.bridge.brokers.get('nats') as Broker
  const [k, n] = await Promise.all([
    kafka.subscribe(kafkaTopic, (m) => void got.kafka.push(m), { group: 'check', from: 'earliest' }),
    nats.subscribe(natsTopic, (m) => void got.nats.push(m), { group: 'check', from: 'earliest' }),
  ])
  const created = await bridge.call('/v1/routes', {
    json: { source, destinations: [`kafka:${kafkaTopic}`, `nats:${natsTopic}`], filter: { type: 'order.*' } },
  })
  expect(created.status).toBe(201)
  expect(created.body).toMatchObject({ source, state: 'active', origin: 'api' })

  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const published = await bridge.call(`/v1/topics/${source}?key=o-7`, {
    json: { id: 'o-7', total: 12.5 },
    headers: {
      'ce-specversion': '1.0',
      'ce-id': 'order-7',
      'ce-source': '/shop',
      'ce-type': 'order.created',
      traceparent,
    },
  })
  expect(published.status).toBe(202)
  await bridge.call(`/v1/topics/${source}`, {
    json: { ignored: true },
    headers: { 'ce-specversion': '1.0', 'ce-id': 'x-1', 'ce-source': '/shop', 'ce-type': 'audit.logged' },
  })
  await until(() => got.kafka.length === 1 && got.nats.length === 1, 30_000, 'the message on Kafka and on NATS')
  await Promise.all([k.close(), n.close()])
  for (const m of [got.kafka[0], got.nats[0]]) {
    expect(m).toMatchObject({ id: 'order-7', key: 'o-7', data: { id: 'o-7', total: 12.5 } })
    expect(m?.headers).toMatchObject({ 'ce-type': 'order.created', 'ce-source': '/shop' })
    expect(m?.headers.traceparent?.split('-')[1]).toBe('0af7651916cd43dd8448eb211c80319c')
  }

  // A route to a broker the bridge does not have, or a topic outside the key's scopes, is refused.
  const unknown = await bridge.call('/v1/routes', { json: { source, destinations: ['redis:orders'] } })
  expect(unknown.status).toBe(400)
  expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_BROKER' })
  expect(unknown.body.error.message).toContain('"redis"')
  const outside = await bridge.call('/v1/routes', { json: { source, destinations: ['kafka:payments'] } })
  expect(outside.status).toBe(403)
  expect(outside.body.error.code).toBe('FORBIDDEN')
})
