/**
 * The Kafka transport against a stub kafkajs, for what the mock cluster cannot show: consumer
 * crashes kafkajs gives up on, released messages, offsets committed in the background.
 */
import kafkajs from 'kafkajs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createKafkaTransport } from '../../src/adapters/kafka/index.js'
import type { LoggerLike, Transport, TransportDelivery } from '../../src/index.js'
import { rejection } from './helpers.js'
import { StubKafka, stubBatch } from './stub-kafkajs.js'

vi.mock('kafkajs', async (importOriginal) => {
  const real = await importOriginal<{ default: typeof import('kafkajs') }>()
  const { StubKafka } = await import('./stub-kafkajs.js')
  return { ...real, default: { ...real.default, Kafka: StubKafka } }
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterEach(() => {
  StubKafka.setup = { existingTopics: [], createError: undefined, joinOnRun: true }
})

describe('against a stub kafkajs', () => {
  let transport: Transport
  let events: string[]
  const kafka = () => StubKafka.last
  const consumer = (i = 0) => {
    const c = kafka().consumers[i]
    if (!c) throw new Error(`no consumer ${i}`)
    return c
  }
  const noDelivery = async () => {}

  beforeEach(async () => {
    transport = await createKafkaTransport({ brokers: ['h:9092'], subscribeTimeout: 200 })
    events = []
    transport.events.on('connected', () => events.push('connected'))
    transport.events.on('disconnected', () => events.push('disconnected'))
    transport.events.on('error', (e) => events.push(`error: ${e.message}`))
  })
  afterEach(() => transport.close())

  it('is silent unless given a logger, and maps kafkajs log levels to its methods', async () => {
    expect(kafka().config.logLevel).toBe(kafkajs.logLevel.NOTHING)
    const lines: string[] = []
    const logger: LoggerLike = {
      debug: (_, m) => void lines.push(`debug ${m}`),
      info: (_, m) => void lines.push(`info ${m}`),
      warn: (_, m) => void lines.push(`warn ${m}`),
      error: (o, m) => void lines.push(`error ${m} ${JSON.stringify(o)}`),
    }
    const logged = await createKafkaTransport({ brokers: ['h:9092'], logger })
    const { config } = kafka()
    expect(config.logLevel).toBe(kafkajs.logLevel.INFO)
    const log = config.logCreator?.(kafkajs.logLevel.INFO)
    const entry = (level: number, message: string) => ({
      namespace: 'Runner',
      level,
      label: '',
      log: { timestamp: 'now', message, groupId: 'g' },
    })
    log?.(entry(kafkajs.logLevel.ERROR, 'crash'))
    log?.(entry(kafkajs.logLevel.WARN, 'slow'))
    log?.(entry(kafkajs.logLevel.INFO, 'joined'))
    log?.(entry(kafkajs.logLevel.DEBUG, 'fetch'))
    expect(lines).toEqual([
      'error crash {"groupId":"g","system":"kafka","kafkajs":"Runner"}',
      'warn slow',
      'info joined',
      'debug fetch',
    ])
    await logged.close()
  })

  it('publishes one sendBatch per call, grouped by topic, acked by all replicas', async () => {
    await transport.publish([
      { topic: 'a', key: 'k1', headers: { 'ce-id': '1', 'content-type': 'text/plain' }, value: new Uint8Array([1]) },
      { topic: 'b', key: undefined, headers: {}, value: new Uint8Array([2]) },
      { topic: 'a', key: 'k2', headers: {}, value: new Uint8Array([3]) },
    ])
    const [batch] = kafka().producers[0]?.batches ?? []
    expect(batch?.acks).toBe(-1)
    expect(batch?.topicMessages?.map((t) => [t.topic, t.messages.map((m) => m.key)])).toEqual([
      ['a', ['k1', 'k2']],
      ['b', [null]],
    ])
    const first = batch?.topicMessages?.[0]?.messages[0]
    expect(first?.headers).toEqual({ ce_id: '1', 'content-type': 'text/plain' })
    expect(Buffer.isBuffer(first?.value)).toBe(true)
  })

  it('reports a publish that cannot reach the cluster as disconnected, and the next success as connected', async () => {
    const producer = kafka().producers[0]
    if (!producer) throw new Error('no producer')
    producer.sendError = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED')
    await expect(
      transport.publish([{ topic: 'a', key: undefined, headers: {}, value: new Uint8Array() }]),
    ).rejects.toThrow(/ECONNREFUSED/)
    expect(transport.state()).toBe('disconnected')
    producer.sendError = undefined
    await transport.publish([{ topic: 'a', key: undefined, headers: {}, value: new Uint8Array() }])
    expect(events).toEqual(['disconnected', 'connected'])
    expect(transport.state()).toBe('connected')
  })

  it('subscribes with one consumer: group, start, concurrency, manual offsets', async () => {
    const sub = await transport.subscribe('orders', { group: 'billing', from: 'earliest', maxInFlight: 4 }, noDelivery)
    // A group is per topic: its Kafka group id names both.
    expect(consumer().config).toMatchObject({ groupId: 'billing/orders', allowAutoTopicCreation: true })
    expect(consumer().subscribed).toEqual({ topics: ['orders'], fromBeginning: true })
    expect(consumer().runConfig).toMatchObject({ eachBatchAutoResolve: false, partitionsConsumedConcurrently: 4 })
    await sub.close()
    expect(consumer().disconnects).toBe(1)
  })

  it('maps group names with the groupId option, and refuses a mapping that gives no id', async () => {
    const mapped = await createKafkaTransport({ brokers: ['h:9092'], groupId: (group, topic) => `${topic}--${group}` })
    const sub = await mapped.subscribe('orders', { group: 'billing', from: 'latest', maxInFlight: 1 }, noDelivery)
    expect(StubKafka.last.consumers[0]?.config.groupId).toBe('orders--billing')
    await sub.close()
    await mapped.close()
    const empty = await createKafkaTransport({ brokers: ['h:9092'], groupId: () => '' })
    await expect(
      empty.subscribe('orders', { group: 'billing', from: 'latest', maxInFlight: 1 }, noDelivery),
    ).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringMatching(/groupId returned ""/),
    })
    await empty.close()
  })

  it('gives every plain subscriber a group of its own', async () => {
    const subs = [
      await transport.subscribe('orders', { group: undefined, from: 'latest', maxInFlight: 1 }, noDelivery),
      await transport.subscribe('orders', { group: undefined, from: 'latest', maxInFlight: 1 }, noDelivery),
    ]
    const [a, b] = [consumer(0).config.groupId, consumer(1).config.groupId]
    expect(a).not.toBe(b)
    expect(consumer(0).subscribed?.fromBeginning).toBe(false)
    await Promise.all(subs.map((s) => s.close()))
  })

  it('resolves subscribe only once the consumer joined and fetched, and times out otherwise', async () => {
    StubKafka.setup.joinOnRun = false
    let resolved = false
    const pending = transport
      .subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery)
      .then((sub) => {
        resolved = true
        return sub
      })
    await sleep(20)
    consumer().emit(consumer().events.GROUP_JOIN, {})
    await sleep(20)
    expect(resolved).toBe(false) // joined, but the start offsets are fixed only by the first fetch
    consumer().emit(consumer().events.FETCH, {})
    await (await pending).close()

    const error = await rejection(
      transport.subscribe('late', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery),
    )
    expect(error).toMatchObject({ code: 'MESSAGING_TIMEOUT', message: expect.stringMatching(/did not join group g/) })
    expect(consumer(1).disconnects).toBe(1)
  })

  it('restarts a consumer that crashes before it joined, and subscribes with the new one', async () => {
    StubKafka.setup.joinOnRun = false
    const patient = await createKafkaTransport({ brokers: ['h:9092'], subscribeTimeout: '5s' })
    const pending = patient.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery)
    await vi.waitFor(() => expect(consumer().runConfig).toBeDefined())
    consumer().emit(consumer().events.CRASH, {
      error: new kafkajs.KafkaJSNonRetriableError('coordinator not available'),
      groupId: 'g',
      restart: false,
    })
    await vi.waitFor(() => expect(consumer(1).runConfig).toBeDefined(), { timeout: 2000 })
    consumer(1).joinAndFetch()
    await (await pending).close()
    expect(consumer(1).disconnects).toBe(1)
    await patient.close()
  })

  it('names the last error when subscribe times out', async () => {
    StubKafka.setup.joinOnRun = false
    const pending = rejection(transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery))
    await vi.waitFor(() => expect(consumer().runConfig).toBeDefined())
    const error = new kafkajs.KafkaJSNumberOfRetriesExceeded(new Error('coordinator not available'), {
      retryCount: 5,
      retryTime: 100,
    })
    consumer().emit(consumer().events.CRASH, { error, groupId: 'g', restart: true })
    expect(await pending).toMatchObject({
      code: 'MESSAGING_TIMEOUT',
      message: expect.stringMatching(/within 200 ms \(subscribeTimeout\); last error: coordinator not available/),
    })
  })

  it('hands messages over in order, resolves acked ones, and stops at a released one without resolving it', async () => {
    const seen: TransportDelivery[] = []
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, async (d) => {
      seen.push(d)
      await d.heartbeat()
      await (seen.length === 2 ? d.release() : d.ack())
    })
    const { payload, calls } = stubBatch('orders', [
      { key: Buffer.from('k'), value: Buffer.from('a'), headers: { ce_id: Buffer.from('1'), Tenant: 't' } },
      { value: Buffer.from('b') },
      { value: Buffer.from('c') },
    ])
    await consumer().runConfig?.eachBatch?.(payload)
    expect(seen.map((d) => Buffer.from(d.value).toString())).toEqual(['a', 'b'])
    expect(seen[0]).toMatchObject({
      topic: 'orders',
      key: 'k',
      redeliveries: 0,
      headers: { 'ce-id': '1', tenant: 't' },
    })
    expect(seen[1]?.key).toBeUndefined()
    expect(calls.resolved).toEqual(['0'])
    expect(calls.heartbeats).toBeGreaterThanOrEqual(2) // the deliveries' own, plus one per acked message
    expect(calls.pauses).toBe(1) // the released message waits a little before it is fetched again
    await sub.close()
  })

  it('keeps a message the core neither acked nor released, and delivers nothing once closing', async () => {
    const seen: string[] = []
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, async (d) => {
      seen.push(Buffer.from(d.value).toString())
    })
    const first = stubBatch('orders', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }])
    await consumer().runConfig?.eachBatch?.(first.payload)
    expect(seen).toEqual(['a'])
    expect(first.calls.resolved).toEqual([])
    await sub.close()
    const second = stubBatch('orders', [{ value: Buffer.from('c') }])
    await consumer().runConfig?.eachBatch?.(second.payload)
    expect(seen).toEqual(['a'])
  })

  it('commits acked offsets in the background and at close, never past an unacked message', async () => {
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 2 }, async (d) => {
      await (Buffer.from(d.value).toString() === 'y' ? d.release() : d.ack())
    })
    expect(consumer().runConfig?.autoCommit).toBe(false)
    const p0 = stubBatch('orders', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }], 0, 10)
    const p1 = stubBatch(
      'orders',
      [{ value: Buffer.from('x') }, { value: Buffer.from('y') }, { value: Buffer.from('z') }],
      1,
    )
    await consumer().runConfig?.eachBatch?.(p0.payload)
    await consumer().runConfig?.eachBatch?.(p1.payload)
    expect(consumer().commits).toEqual([]) // not one commit per batch
    await sub.close()
    // Partition 0 up to b (offset 11, so 12 is next), partition 1 only x: y was released, z never handed over.
    expect(consumer().commits).toEqual([
      {
        offsets: [
          { topic: 'orders', partition: 0, offset: '12' },
          { topic: 'orders', partition: 1, offset: '1' },
        ],
        disconnects: 0,
      },
    ])
    expect(consumer().disconnects).toBe(1)
  })

  it('does not commit offsets of partitions a rebalance took away', async () => {
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 2 }, (d) => d.ack())
    await consumer().runConfig?.eachBatch?.(stubBatch('orders', [{ value: Buffer.from('a') }], 0).payload)
    await consumer().runConfig?.eachBatch?.(stubBatch('orders', [{ value: Buffer.from('b') }], 1).payload)
    consumer().emit(consumer().events.GROUP_JOIN, { groupId: 'g', memberAssignment: { orders: [1] } })
    await sub.close()
    expect(consumer().commits.map((c) => c.offsets)).toEqual([[{ topic: 'orders', partition: 1, offset: '1' }]])
  })

  it('commits what was handled before kafkajs rejoins a rebalancing group', async () => {
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, (d) => d.ack())
    const { payload } = stubBatch('orders', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }])
    const rebalancing = Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' })
    payload.heartbeat = async () => {
      throw rebalancing
    }
    await expect(consumer().runConfig?.eachBatch?.(payload)).rejects.toBe(rebalancing)
    expect(consumer().commits.map((c) => c.offsets)).toEqual([[{ topic: 'orders', partition: 0, offset: '1' }]])
    await sub.close()
  })

  it('starts a new consumer when kafkajs gives up on a crashed one', async () => {
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery)
    consumer().emit(consumer().events.CRASH, {
      error: new kafkajs.KafkaJSNonRetriableError('topic authorization failed'),
      groupId: 'g',
      restart: false,
    })
    expect(events).toEqual(['error: kafka consumer of orders (group g/orders) crashed: topic authorization failed'])
    await vi.waitFor(() => expect(kafka().consumers).toHaveLength(2), { timeout: 2000 })
    await vi.waitFor(() => expect(consumer(1).runConfig).toBeDefined())
    expect(consumer(1).config.groupId).toBe('g/orders')
    expect(consumer(0).disconnects).toBe(1)
    await sub.close()
    expect(consumer(1).disconnects).toBe(1)
  })

  it('leaves a retriable crash to kafkajs: disconnected, then connected when it joins again', async () => {
    const sub = await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery)
    const error = new kafkajs.KafkaJSNumberOfRetriesExceeded(new kafkajs.KafkaJSConnectionError('ECONNREFUSED'), {
      retryCount: 5,
      retryTime: 1000,
    })
    consumer().emit(consumer().events.CRASH, { error, groupId: 'g', restart: true })
    expect(transport.state()).toBe('disconnected')
    consumer().emit(consumer().events.GROUP_JOIN, {})
    expect(transport.state()).toBe('connected')
    expect(events).toEqual(['disconnected', 'connected'])
    await sleep(600)
    expect(kafka().consumers).toHaveLength(1)
    await sub.close()
  })

  it('closes its consumers and producer, then refuses work', async () => {
    await transport.subscribe('orders', { group: 'g', from: 'latest', maxInFlight: 1 }, noDelivery)
    await transport.close()
    expect(consumer().disconnects).toBe(1)
    expect(kafka().producers[0]?.connected).toBe(false)
    expect(transport.state()).toBe('closed')
    await expect(transport.publish([])).rejects.toMatchObject({ code: 'MESSAGING_CLOSED' })
  })
})
