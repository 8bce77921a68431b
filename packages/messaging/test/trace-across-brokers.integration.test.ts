/**
 * One trace from an HTTP request through Kafka and then NATS JetStream: the order service's
 * request handler publishes to Kafka, a Kafka consumer forwards to NATS, a NATS consumer handles
 * it. Every span (server, send, process, send, process) belongs to the request's trace.
 */

import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { withHttpLogging } from '@backplane/logging'
import { until } from '@backplane/messaging/testing'
import { context, SpanKind, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { afterAll, expect, it } from 'vitest'
import { createBroker } from '../src/index.js'
import { requireEnv } from './env.js'

const spans = new InMemorySpanExporter()
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).register()

const kafka = await createBroker(`kafka://${requireEnv('KAFKA_BROKERS')}`, {
  kafka: { sessionTimeout: 6000, maxWaitTime: 100 },
})
const nats = await createBroker(`${requireEnv('NATS_URL')}?jetstream=true`)
afterAll(async () => {
  await Promise.all([kafka.close(), nats.close()])
})

it('a trace started by an HTTP request stays one trace through Kafka and NATS', async () => {
  const kafkaTopic = `orders.${randomUUID().slice(0, 8)}`
  const natsTopic = `shipping.${randomUUID().slice(0, 8)}`
  const seenAtTheEnd: string[] = []
  const forward = await kafka.subscribe<{ id: string }>(kafkaTopic, (m) => nats.publish(natsTopic, m.data), {
    group: 'forwarder',
  })
  const finish = await nats.subscribe<{ id: string }>(
    natsTopic,
    () => void seenAtTheEnd.push(trace.getSpanContext(context.active())?.traceId ?? 'none'),
    { group: 'shipping' },
  )
  const log = { info() {}, warn() {}, error() {} } as never
  const server = createServer(
    withHttpLogging(log, async (_req, res) => {
      await kafka.publish(kafkaTopic, { id: 'o-1' }, { key: 'o-1' })
      res.statusCode = 202
      res.end()
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`, { method: 'POST' })
  const traceId = response.headers.get('traceparent')?.split('-')[1]
  await until(() => seenAtTheEnd.length === 1, 30_000, 'the message at the end of the chain')
  server.close()
  await Promise.all([forward.close(), finish.close()])

  expect(seenAtTheEnd).toEqual([traceId])
  const ofTrace = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
  const names = ofTrace.map((s) => `${SpanKind[s.kind]} ${s.name}`)
  expect(names).toEqual(
    expect.arrayContaining([
      'SERVER POST',
      `PRODUCER send ${kafkaTopic}`,
      `CONSUMER process ${kafkaTopic}`,
      `PRODUCER send ${natsTopic}`,
      `CONSUMER process ${natsTopic}`,
    ]),
  )
  const kafkaProcess = ofTrace.find((s) => s.name === `process ${kafkaTopic}`)
  expect(kafkaProcess?.attributes).toMatchObject({
    'messaging.system': 'kafka',
    'messaging.destination.name': kafkaTopic,
    'messaging.operation.type': 'process',
    'messaging.consumer.group.name': 'forwarder',
  })
  const natsSend = ofTrace.find((s) => s.name === `send ${natsTopic}`)
  expect(natsSend?.parentSpanContext?.spanId).toBe(kafkaProcess?.spanContext().spanId)
})
