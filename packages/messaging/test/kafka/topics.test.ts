/** Topic creation with the admin API (ensureTopics), which the mock cluster cannot show: against a stub. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createKafkaTransport, ensureTopics } from '../../src/adapters/kafka/index.js'
import { rejection } from './helpers.js'
import { StubAdmin, StubKafka } from './stub-kafkajs.js'

vi.mock('kafkajs', async (importOriginal) => {
  const real = await importOriginal<{ default: typeof import('kafkajs') }>()
  const { StubKafka } = await import('./stub-kafkajs.js')
  return { ...real, default: { ...real.default, Kafka: StubKafka } }
})

afterEach(() => {
  StubKafka.setup = { existingTopics: [], createError: undefined, joinOnRun: true }
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
