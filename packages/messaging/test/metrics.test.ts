/** The package's metrics, recorded for real (memory broker, HTTP bridge), and the README's catalogue of them. */
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  expectInCatalogue,
  type MetricRecording,
  readCatalogue,
  recordMetrics,
  sourceInstruments,
  total,
} from '../../../test/helpers/metric-catalogue.js'
import { createBroker } from '../src/index.js'
import { type RunningBridge, receiver, sse, startBridge, unique, until } from './bridge/helpers.js'

const PACKAGE = 'packages/messaging'
const SEND = 'messaging.client.operation.duration'
const PROCESS = 'messaging.process.duration'
const N = 7

let recording: MetricRecording
beforeEach(() => {
  recording = recordMetrics()
})
afterEach(async () => {
  await recording.stop()
})

describe('messaging metrics', () => {
  it('N messages published and handled: N send and N process durations, by destination and group', async () => {
    const broker = await createBroker(`memory://metrics-${randomUUID().slice(0, 8)}`)
    const [topic, other] = [unique('orders'), unique('other')]
    let handled = 0
    await broker.subscribe(topic, () => void handled++, { group: 'billing' })
    for (let i = 0; i < N; i++) await broker.publish(topic, { i })
    await broker.publish(other, { i: 0 })
    await until(() => handled === N, 10_000, `${N} messages handled`)
    await broker.close()

    const recorded = await recording.collect()
    const send = { 'messaging.operation.name': 'send', 'messaging.destination.name': topic }
    const process = { 'messaging.operation.name': 'process', 'messaging.destination.name': topic }
    expect(total(recorded, SEND, send)).toBe(N)
    expect(total(recorded, SEND, { 'messaging.destination.name': other })).toBe(1)
    expect(total(recorded, PROCESS, { ...process, 'messaging.consumer.group.name': 'billing' })).toBe(N)
    expect(total(recorded, PROCESS, { 'messaging.destination.name': other })).toBe(0)
    // Processing time stays out of the client operation duration (OpenTelemetry messaging conventions).
    expect(total(recorded, SEND, { 'messaging.operation.name': 'process' })).toBe(0)
    const points = recorded.find((m) => m.name === SEND)?.points ?? []
    expect(points.every((p) => p.value >= 0 && p.value < 60)).toBe(true) // seconds, not milliseconds
    expectInCatalogue(recorded, readCatalogue(PACKAGE))
  })

  it('the HTTP bridge: requests, webhook calls, routed messages and SSE streams', async () => {
    const hook = await receiver()
    let bridge: RunningBridge | undefined
    try {
      const key = 'metrics-key-0123456789abcdef'
      bridge = await startBridge(
        {
          brokers: { main: `memory://bridge-metrics-${randomUUID().slice(0, 8)}` },
          auth: { keys: [{ id: 'test', key, publish: ['*'], subscribe: ['*'] }] },
          webhooks: { allow: ['127.0.0.1'], timeout: '2s' },
          store: false,
        },
        key,
      )
      const [topic, copy] = [unique('paid'), unique('copy')]
      const subscription = await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url } })
      expect(subscription.status).toBe(201)
      const route = await bridge.call('/v1/routes', { json: { source: topic, destinations: [copy] } })
      expect(route.status).toBe(201)
      const stream = await sse(`${bridge.base}/v1/topics/${copy}/events?access_token=${key}`)
      await until(() => stream.comments.includes('ready'), 10_000, 'the stream to open')

      for (let i = 0; i < N; i++) expect((await bridge.call(`/v1/topics/${topic}`, { json: { i } })).status).toBe(202)
      await until(() => hook.received.length === N && stream.events.length === N, 10_000, `${N} deliveries`)

      let recorded = await recording.collect()
      const id = subscription.body.id as string
      const publishes = { 'http.request.method': 'POST', 'http.response.status_code': 202 }
      expect(total(recorded, 'http.server.request.duration', publishes)).toBe(N)
      expect(
        total(recorded, 'backplane.bridge.webhook.calls', { 'backplane.subscription.id': id, outcome: 'delivered' }),
      ).toBe(N)
      expect(total(recorded, 'backplane.bridge.webhook.duration', { 'backplane.subscription.id': id })).toBe(N)
      const routed = { 'backplane.route.id': route.body.id, outcome: 'forwarded' }
      expect(total(recorded, 'backplane.bridge.route.messages', routed)).toBe(N)
      expect(total(recorded, 'backplane.bridge.sse.streams')).toBe(1)
      // The route's publishes to the copy, each read back by the SSE stream.
      expect(total(recorded, SEND, { 'messaging.destination.name': copy, 'messaging.operation.name': 'send' })).toBe(N)
      expect(total(recorded, PROCESS, { 'messaging.destination.name': copy })).toBe(N)
      expectInCatalogue(recorded, readCatalogue(PACKAGE))

      stream.close()
      await until(
        async () => total(await recording.collect(), 'backplane.bridge.sse.streams') === 0,
        10_000,
        'the stream to be counted closed',
      )
      recorded = await recording.collect()
      expectInCatalogue(recorded, readCatalogue(PACKAGE))
    } finally {
      await bridge?.close()
      await hook.stop()
    }
  })

  it('catalogue: every instrument of src/ is listed once, as created; nothing else', () => {
    const catalogue = readCatalogue(PACKAGE)
    const describe = (e: { name: string; instrument: string }) => `${e.name} ${e.instrument}`
    expect(sourceInstruments(PACKAGE).map(describe).sort()).toEqual(catalogue.map(describe).sort())
  })
})
