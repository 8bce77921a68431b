/**
 * The Kafka adapter without a Kafka: options, URLs, the kafkajs version check, the CloudEvents
 * header mapping, and (against a stub kafkajs) what the mock cluster cannot show: topic
 * creation with the admin API, consumer crashes kafkajs gives up on, released messages.
 */
import kafkajs from 'kafkajs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  checkKafkajsVersion,
  createKafkaTransport,
  createTransport,
  ensureTopics,
  fromKafkaHeaders,
  optionsFromUrl,
  stickyPartitioner,
  subscriptionAwareAssigner,
  toKafkaHeaders,
} from '../src/adapters/kafka.js'
import { createBroker, type LoggerLike, type Transport, type TransportDelivery } from '../src/index.js'
import { StubAdmin, StubKafka, stubBatch } from './kafka/stub-kafkajs.js'

vi.mock('kafkajs', async (importOriginal) => {
  const real = await importOriginal<{ default: typeof import('kafkajs') }>()
  const { StubKafka } = await import('./kafka/stub-kafkajs.js')
  return { ...real, default: { ...real.default, Kafka: StubKafka } }
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

afterEach(() => {
  StubKafka.setup = { existingTopics: [], createError: undefined, joinOnRun: true }
})

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise
  } catch (error) {
    return error as { code: string; message: string }
  }
  throw new Error('expected a rejection')
}

describe('options', () => {
  it.each([
    [{}, /brokers: .*expected/],
    [{ brokers: ['kafka-1'] }, /brokers\.0: expected "host:port"/],
    [{ brokers: ['h:9092'], sessionTimeout: '6000' }, /sessionTimeout: .*expected number, received string/],
    [{ brokers: ['h:9092'], maxWaitTimeInMs: 0 }, /maxWaitTimeInMs: .*>0/],
    [{ brokers: ['h:9092'], sesionTimeout: 6000 }, /unknown option\(s\) "sesionTimeout"; expected brokers, clientId/],
    [{ brokers: ['h:9092'], sessionTimeout: 6000, heartbeatInterval: 6000 }, /heartbeatInterval: expected less than/],
    [{ brokers: ['h:9092'], sasl: { mechanism: 'kerberos' } }, /sasl/],
    [{ brokers: ['h:9092'], ensureTopics: [{ topic: 't', numPartitions: 0 }] }, /ensureTopics\.0\.numPartitions/],
    [{ brokers: ['h:9092'], logger: console.log }, /logger: expected a logger/],
    [{ brokers: ['h:9092'], ssl: 'yes' }, /ssl: expected true, false or tls.connect options/],
  ])('rejects %j, saying what was expected', async (options, message) => {
    const error = await rejection(createKafkaTransport(options as never))
    expect(error.code).toBe('MESSAGING_INVALID_OPTIONS')
    expect(error.message).toMatch(/^invalid kafka options: /)
    expect(error.message).toMatch(message)
  })

  it('checks the kafka options given to createBroker', async () => {
    const error = await rejection(createBroker('kafka://h:9092', { kafka: { sessionTimeout: -1 } }))
    expect(error).toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS', message: expect.stringMatching(/sessionTimeout/) })
  })
})

describe('kafka:// URLs', () => {
  it('reads brokers, credentials and parameters', () => {
    const url = new URL(
      'kafka://svc:p%40ss@h1:9093?sasl=scram-sha-512&clientId=billing&sessionTimeout=6000&ssl=true&brokers=h2,h3:9094',
    )
    expect(optionsFromUrl(url)).toEqual({
      brokers: ['h1:9093', 'h2:9092', 'h3:9094'],
      clientId: 'billing',
      sessionTimeout: 6000,
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'p@ss' },
    })
  })

  it.each([
    ['kafka://h1', ['h1:9092']],
    ['kafka://h1,h2:9093', ['h1:9093', 'h2:9093']],
    ['kafka://[::1]:9093', ['[::1]:9093']],
  ])('%s has brokers %j', (url, brokers) => {
    expect(optionsFromUrl(new URL(url)).brokers).toEqual(brokers)
  })

  it.each([
    ['kafka://h:9092?retries=3', /unknown query parameter "retries": expected clientId, brokers/],
    ['kafka://h:9092?ssl=yes', /ssl=true or ssl=false/],
    ['kafka://h:9092?sasl=gssapi', /expected one of plain/],
    ['kafka://h:9092?sasl=plain', /needs a user and password/],
  ])('rejects %s', async (url, message) => {
    const error = await rejection(createBroker(url))
    expect(error.code).toBe('MESSAGING_INVALID_URL')
    expect(error.message).toMatch(message)
  })

  it('hides the password in errors', () => {
    expect(() => optionsFromUrl(new URL('kafka://u:secret@h:9092?nope=1'))).toThrow(/kafka:\/\/u:\*\*\*@h:9092/)
  })

  it('lets the options given in code win over the URL', async () => {
    const transport = await createTransport(new URL('kafka://h:9092?clientId=from-url'), {
      logger: undefined,
      settings: { clientId: 'from-code' },
    })
    expect(StubKafka.last.config).toMatchObject({ clientId: 'from-code', brokers: ['h:9092'] })
    await transport.close()
  })
})

describe('the installed kafkajs', () => {
  it.each(['2.2.0', '2.2.4', '2.3.1'])('accepts %s', (version) => {
    expect(() => checkKafkajsVersion(version)).not.toThrow()
  })

  it.each(['1.16.0', '2.1.9', '3.0.0', 'garbage', undefined])('refuses %s, naming it and the supported range', (v) => {
    expect(() => checkKafkajsVersion(v)).toThrow(
      expect.objectContaining({
        code: 'MESSAGING_CLIENT_UNSUPPORTED',
        message: expect.stringMatching(
          new RegExp(`kafkajs ${v ?? '\\(unknown version\\)'} is installed.*\\^2\\.2\\.0`),
        ),
      }),
    )
  })

  it('is checked when the adapter loads', async () => {
    vi.resetModules()
    vi.doMock('node:module', async (importOriginal) => ({
      ...(await importOriginal<object>()),
      createRequire: () => () => ({ version: '1.16.0' }),
    }))
    try {
      await expect(import('../src/adapters/kafka.js')).rejects.toMatchObject({
        code: 'MESSAGING_CLIENT_UNSUPPORTED',
        message: expect.stringContaining('kafkajs 1.16.0 is installed'),
      })
    } finally {
      vi.doUnmock('node:module')
      vi.resetModules()
    }
  })
})

describe('CloudEvents Kafka binding headers', () => {
  it('sends ce-* as ce_* and every value as a string (kafkajs writes it as UTF-8); content-type keeps its name', () => {
    const wire = toKafkaHeaders({ 'ce-id': 'e1', 'ce-specversion': '1.0', 'content-type': 'application/json', t: 'ü' })
    expect(Object.keys(wire)).toEqual(['ce_id', 'ce_specversion', 'content-type', 't'])
    expect(Object.values(wire).every((v) => typeof v === 'string')).toBe(true)
    expect(wire.t).toBe('ü')
  })

  it('reads ce_* back as ce-*, lowercases names, takes the last of a repeated header', () => {
    expect(
      fromKafkaHeaders({
        ce_id: Buffer.from('e1'),
        'Content-Type': Buffer.from('text/plain'),
        Tenant: 't1',
        multi: [Buffer.from('a'), Buffer.from('b')],
        gone: undefined,
      }),
    ).toEqual({ 'ce-id': 'e1', 'content-type': 'text/plain', tenant: 't1', multi: 'b' })
  })

  it('round-trips', () => {
    const headers = { 'ce-id': 'e1', 'ce-source': '//h/p', traceparent: '00-abc-def-01', 'x-y': 'z' }
    expect(fromKafkaHeaders(toKafkaHeaders(headers))).toEqual(headers)
  })
})

describe('partitions', () => {
  const partitionMetadata = [0, 1, 2, 3].map((partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }))

  it('keeps keyless messages on one partition for a run of 100, then moves to the next', () => {
    const partition = stickyPartitioner()()
    const chosen = Array.from({ length: 250 }, () =>
      partition({ topic: 't', partitionMetadata, message: { value: 'v' } }),
    )
    const first = chosen[0] as number
    expect(new Set(chosen.slice(0, 100))).toEqual(new Set([first]))
    expect(new Set(chosen.slice(100, 200))).toEqual(new Set([(first + 1) % 4]))
    expect(new Set(chosen.slice(200))).toEqual(new Set([(first + 2) % 4]))
  })

  it('sends keyed messages where every Kafka client does (murmur2), and skips partitions without a leader', () => {
    const partition = stickyPartitioner()()
    const byKafkajs = kafkajs.Partitioners.DefaultPartitioner()
    for (const key of ['a', 'b', 'c', 'order-42']) {
      const message = { key, value: 'v' }
      expect(partition({ topic: 't', partitionMetadata, message })).toBe(
        byKafkajs({ topic: 't', partitionMetadata, message }),
      )
    }
    const leaderless = partitionMetadata.map((p) => (p.partitionId === 2 ? p : { ...p, leader: -1 }))
    expect(partition({ topic: 'u', partitionMetadata: leaderless, message: { value: 'v' } })).toBe(2)
  })

  it("assigns each topic's partitions to the members subscribed to it, and only to them", async () => {
    const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol
    const partitionCounts: Record<string, number> = { orders: 4, refunds: 2 }
    const targets: string[][] = []
    const cluster = {
      addMultipleTargetTopics: async (topics: string[]) => void targets.push(topics),
      findTopicPartitionMetadata: (topic: string) =>
        Array.from({ length: partitionCounts[topic] ?? 0 }, (_, partitionId) => ({ partitionId })),
    }
    const assigner = subscriptionAwareAssigner({ cluster, groupId: 'billing', logger: undefined } as never)
    const member = (memberId: string, topics: string[]) => ({
      memberId,
      memberMetadata: MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    })
    const result = await assigner.assign({
      members: [member('m1', ['orders']), member('m2', ['refunds']), member('m3', ['orders', 'refunds'])],
      topics: ['orders'], // kafkajs passes the leader's own topics only
    })
    const owned = Object.fromEntries(
      result.map((r) => [r.memberId, MemberAssignment.decode(r.memberAssignment)?.assignment ?? {}]),
    )
    expect(targets).toEqual([['orders', 'refunds']])
    expect(owned.m1?.refunds).toBeUndefined()
    expect(owned.m2?.orders).toBeUndefined()
    const all = (topic: string) =>
      Object.values(owned)
        .flatMap((a) => a[topic] ?? [])
        .sort()
    expect(all('orders')).toEqual([0, 1, 2, 3])
    expect(all('refunds')).toEqual([0, 1])
    expect(owned.m1?.orders).toHaveLength(2)
    expect(assigner.name).toBe('RoundRobinAssigner')
  })
})

describe('ensureTopics, with a stub admin', () => {
  it('creates only the missing topics, with the broker defaults where not given', async () => {
    const admin = new StubAdmin(['orders'])
    const created = await ensureTopics(admin, [
      { topic: 'orders' },
      { topic: 'payments', numPartitions: 6 },
      { topic: 'audit', replicationFactor: 3 },
    ])
    expect(created).toEqual(['payments', 'audit'])
    expect(admin.created).toEqual([
      { topic: 'payments', numPartitions: 6, replicationFactor: -1 },
      { topic: 'audit', numPartitions: -1, replicationFactor: 3 },
    ])
    expect(admin.calls).toEqual(['connect', 'listTopics', 'createTopics', 'disconnect'])
  })

  it('creates nothing when every topic exists', async () => {
    const admin = new StubAdmin(['orders'])
    expect(await ensureTopics(admin, [{ topic: 'orders' }])).toEqual([])
    expect(admin.calls).toEqual(['connect', 'listTopics', 'disconnect'])
  })

  it('runs at connect, before the transport is handed out', async () => {
    StubKafka.setup.existingTopics = ['orders']
    const transport = await createKafkaTransport({ brokers: ['h:9092'], ensureTopics: [{ topic: 'payments' }] })
    const [admin] = StubKafka.last.admins
    expect(admin?.created).toEqual([{ topic: 'payments', numPartitions: -1, replicationFactor: -1 }])
    expect(admin?.calls.at(-1)).toBe('disconnect')
    await transport.close()
  })

  it('fails the connect, naming the topics, when the cluster refuses', async () => {
    StubKafka.setup.createError = new Error('Broker 0 not found')
    const error = await rejection(createKafkaTransport({ brokers: ['h:9092'], ensureTopics: [{ topic: 'payments' }] }))
    expect(error.code).toBe('MESSAGING_CONNECTION_FAILED')
    expect(error.message).toMatch(/ensureTopics \(payments\): Broker 0 not found/)
    expect(StubKafka.last.admins[0]?.calls.at(-1)).toBe('disconnect')
    expect(StubKafka.last.producers[0]?.connected).toBe(false)
  })
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
    transport = await createKafkaTransport({ brokers: ['h:9092'], subscribeTimeoutMs: 200 })
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
    expect(consumer().config).toMatchObject({ groupId: 'billing', allowAutoTopicCreation: true })
    expect(consumer().subscribed).toEqual({ topics: ['orders'], fromBeginning: true })
    expect(consumer().runConfig).toMatchObject({ eachBatchAutoResolve: false, partitionsConsumedConcurrently: 4 })
    await sub.close()
    expect(consumer().disconnects).toBe(1)
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
    const patient = await createKafkaTransport({ brokers: ['h:9092'], subscribeTimeoutMs: 5000 })
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
      message: expect.stringMatching(/within 200 ms \(subscribeTimeoutMs\); last error: coordinator not available/),
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
    expect(events).toEqual(['error: kafka consumer of orders (group g) crashed: topic authorization failed'])
    await vi.waitFor(() => expect(kafka().consumers).toHaveLength(2), { timeout: 2000 })
    await vi.waitFor(() => expect(consumer(1).runConfig).toBeDefined())
    expect(consumer(1).config.groupId).toBe('g')
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
