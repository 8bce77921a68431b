/**
 * Interop with a Kafka client that is not ours: kcat (librdkafka) reads what the Kafka adapter
 * publishes, the CloudEvents SDK decodes it as a Kafka binary-mode event, and what kcat produces
 * with `ce_*` headers reaches our subscriber as the same event, in the trace its `traceparent`
 * names. Only the public API on our side.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { type Broker, createBroker, defineTopic, type Message } from '@backplane/messaging'
import { until } from '@backplane/messaging/testing'
import { context, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { type CloudEvent, Kafka, type KafkaMessage } from 'cloudevents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { requireEnv } from '../env.js'

const brokers = requireEnv('KAFKA_BROKERS')
const SOURCE = '/interop/kafka-tests'
const spans = new InMemorySpanExporter()
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).register()

const unique = (what: string) => `interop.${what}.${randomUUID().slice(0, 8)}`

/** kcat, no shell; fails with its stderr. A short fetch wait: the mock answers a fetch only when it runs out. */
function kcat(args: string[], stdin = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'kcat',
      ['-b', brokers, '-q', '-X', 'fetch.wait.max.ms=10', ...args],
      { timeout: 10_000, encoding: 'utf8', maxBuffer: 4 << 20 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`kcat ${args.join(' ')} failed (${error.code ?? error.signal}): ${stderr.trim()}`))
        else resolve(stdout)
      },
    )
    child.stdin?.end(stdin)
  })
}

/** What `kcat -J` prints per record; headers as a flat name, value, name, value list. */
interface KcatRecord {
  topic: string
  partition: number
  offset: number
  key: string | null
  payload: string | null
  headers?: string[]
}

async function readAll(topic: string): Promise<KcatRecord[]> {
  const out = await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-J'])
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as KcatRecord)
}

/** The record's headers in order, as kcat printed them (a repeated name would show twice). */
function headerPairs(record: KcatRecord): [string, string][] {
  const flat = record.headers ?? []
  const pairs: [string, string][] = []
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i] as string, flat[i + 1] as string])
  return pairs
}

/** Reads the record as the CloudEvents SDK's Kafka binding does, binary mode. */
function sdkEvent(record: KcatRecord): CloudEvent<unknown> {
  const message: KafkaMessage<string> = {
    key: record.key ?? '',
    value: record.payload ?? '',
    body: record.payload ?? '',
    headers: Object.fromEntries(headerPairs(record)),
  }
  return Kafka.toEvent(message) as CloudEvent<unknown>
}

const Order = z.object({
  id: z.number(),
  lines: z.array(z.object({ sku: z.string(), qty: z.number() })),
  note: z.string(),
})
const order = { id: 42, lines: [{ sku: 'A-1', qty: 2 }], note: 'deliver to Łódź' }

let broker: Broker
beforeAll(async () => {
  broker = await createBroker(`kafka://${brokers}`, {
    source: SOURCE,
    kafka: { sessionTimeout: 6000, maxWaitTime: 100 },
  })
})
afterAll(async () => {
  await broker?.close()
})

describe('our adapter publishes, kcat reads', () => {
  it('key, body bytes and the CloudEvents binary-mode headers, which the CloudEvents SDK reads back', async () => {
    const topic = defineTopic(unique('out'), Order)
    const before = Date.now()
    const result = await broker.publish(topic, order, { key: 'customer-7', headers: { Tenant: 'acme' } })
    const after = Date.now()

    const records = await readAll(topic.name)
    expect(records).toHaveLength(1)
    const [record] = records as [KcatRecord]
    expect(record.key).toBe('customer-7')
    expect(record.payload).toBe(JSON.stringify(order))
    const pairs = headerPairs(record)
    const headers = Object.fromEntries(pairs)
    expect(headers).toMatchObject({
      ce_id: result.id,
      ce_source: SOURCE,
      ce_type: topic.name,
      ce_specversion: '1.0',
      'content-type': 'application/json',
      tenant: 'acme',
    })
    const time = Date.parse(headers.ce_time as string)
    expect(time).toBeGreaterThanOrEqual(before)
    expect(time).toBeLessThanOrEqual(after)
    // Kafka's binding spells them ce_*: no ce-* name leaks, none is written twice, and the only
    // ce_* are the attributes (any other would be an extension attribute to a CloudEvents reader).
    const names = pairs.map(([name]) => name)
    expect(new Set(names).size).toBe(names.length)
    expect(names.filter((n) => n.startsWith('ce-'))).toEqual([])
    expect(names.filter((n) => n.startsWith('ce_')).sort()).toEqual([
      'ce_id',
      'ce_source',
      'ce_specversion',
      'ce_time',
      'ce_type',
    ])

    const event = sdkEvent(record)
    expect(event.validate()).toBe(true)
    expect(event).toMatchObject({
      id: result.id,
      source: SOURCE,
      type: topic.name,
      specversion: '1.0',
      datacontenttype: 'application/json',
      time: headers.ce_time,
      partitionkey: 'customer-7',
    })
    expect(event.data).toEqual(order)
  })

  it('writes the active trace as traceparent: the trace of the caller, the span of the send', async () => {
    const topic = defineTopic(unique('traced'), Order)
    const tracer = trace.getTracer('interop-test')
    const caller = tracer.startSpan('caller')
    await context.with(trace.setSpan(context.active(), caller), () => broker.publish(topic, order, { key: 'k' }))
    caller.end()
    const send = spans.getFinishedSpans().find((s) => s.name === `send ${topic.name}`)
    expect(send?.parentSpanContext?.spanId).toBe(caller.spanContext().spanId)

    const [record] = await readAll(topic.name)
    const headers = Object.fromEntries(headerPairs(record as KcatRecord))
    expect(headers.traceparent).toBe(`00-${caller.spanContext().traceId}-${send?.spanContext().spanId}-01`)
  })

  it('a non-ASCII header value and a key with a space arrive byte for byte', async () => {
    const topic = unique('utf8-out')
    const { id } = await broker.publish(topic, 'x', {
      key: 'customer 7 / Zoë',
      headers: { 'x-city': 'Łódź', 'x-note': '日本語 ✓' },
    })
    const [record] = await readAll(topic)
    expect(record?.key).toBe('customer 7 / Zoë')
    expect(Object.fromEntries(headerPairs(record as KcatRecord))).toMatchObject({
      ce_id: id,
      'x-city': 'Łódź',
      'x-note': '日本語 ✓',
    })
    expect(sdkEvent(record as KcatRecord).partitionkey).toBe('customer 7 / Zoë')
  })
})

describe('kcat produces, our adapter consumes', () => {
  // One subscription for every case: a group's first join takes ~3 s on the mock.
  const topic = unique('in')
  // Yesterday: a time our subscriber could not have made up.
  const EVENT_TIME = new Date(Date.now() - 86_400_000).toISOString()
  const received = new Map<string, { message: Message; traceId: string | undefined }>()
  let close: () => Promise<void> = async () => {}
  const ce = (id: string) => ({
    ce_id: id,
    ce_source: '/kcat',
    ce_type: 'com.example.order.created',
    ce_specversion: '1.0',
    ce_time: EVENT_TIME,
    'content-type': 'application/json',
  })
  const flagsOf = (headers: Record<string, string>) =>
    Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}=${value}`])

  beforeAll(async () => {
    // Creates the topic (the mock does on first use), so that the group starts on its partitions.
    await kcat(['-P', '-t', topic, '-k', 'warm-up', ...flagsOf(ce('warm-up'))], '"warm-up"')
    const sub = await broker.subscribe(
      topic,
      (message) => {
        received.set(message.id, { message, traceId: trace.getSpanContext(context.active())?.traceId })
      },
      { group: `interop-${randomUUID().slice(0, 8)}`, from: 'earliest' },
    )
    close = () => sub.close()
  })
  afterAll(() => close())

  async function produce(key: string, headers: Record<string, string>, body: unknown): Promise<Message> {
    await kcat(['-P', '-t', topic, '-k', key, ...flagsOf(headers)], JSON.stringify(body))
    const id = headers.ce_id as string
    await until(() => received.has(id), 10_000, `message ${id} from kcat`)
    return received.get(id)?.message as Message
  }

  it('is the same event: id, type, source, time, key and data', async () => {
    const id = randomUUID()
    const message = await produce('customer-7', ce(id), order)
    expect(message.id).toBe(id)
    expect(message.topic).toBe(topic)
    expect(message.key).toBe('customer-7')
    expect(message.data).toEqual(order)
    expect(message.publishedAt.toISOString()).toBe(EVENT_TIME)
    expect(Buffer.from(message.raw).toString('utf8')).toBe(JSON.stringify(order))
    expect(message.headers).toMatchObject({
      'ce-id': id,
      'ce-source': '/kcat',
      'ce-type': 'com.example.order.created',
      'ce-specversion': '1.0',
      'ce-time': EVENT_TIME,
      'content-type': 'application/json',
    })
  })

  it('runs the handler in the trace its traceparent names', async () => {
    const id = randomUUID()
    const traceId = randomUUID().replaceAll('-', '')
    const parentId = traceId.slice(0, 16)
    await produce('k', { ...ce(id), traceparent: `00-${traceId}-${parentId}-01` }, { n: 1 })
    expect(received.get(id)?.traceId).toBe(traceId)
    const process = spans
      .getFinishedSpans()
      .find((s) => s.name === `process ${topic}` && s.attributes['messaging.message.id'] === id)
    expect(process?.parentSpanContext?.spanId).toBe(parentId)
  })

  it('a non-ASCII header value and a key with a space arrive as sent', async () => {
    const id = randomUUID()
    const message = await produce('customer 7 / Zoë', { ...ce(id), 'x-city': 'Łódź', 'x-note': '日本語 ✓' }, 'x')
    expect(message.key).toBe('customer 7 / Zoë')
    expect(message.headers).toMatchObject({ 'x-city': 'Łódź', 'x-note': '日本語 ✓' })
    expect(message.data).toBe('x')
  })
})
