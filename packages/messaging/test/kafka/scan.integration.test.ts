/** Transport.scan on Kafka (the librdkafka mock): from the start to the high watermarks of the call. */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKafkaTransport } from '../../src/adapters/kafka/index.js'
import { type Broker, createBrokerOver, type ScannedMessage, type Transport } from '../../src/index.js'
import { requireEnv } from '../env.js'

const brokers = requireEnv('KAFKA_BROKERS')

async function collect(transport: Transport, topic: string, each?: (m: ScannedMessage) => Promise<void>) {
  if (!transport.scan) throw new Error('the kafka transport has no scan')
  const out: ScannedMessage[] = []
  for await (const message of transport.scan(topic, {})) {
    out.push(message)
    await each?.(message)
  }
  return out
}

describe('kafka scan', () => {
  let transport: Transport
  let broker: Broker
  beforeAll(async () => {
    transport = await createKafkaTransport({ brokers: brokers.split(','), sessionTimeout: 6000, maxWaitTime: 100 })
    broker = createBrokerOver(transport)
  })
  afterAll(() => broker.close())

  it('scans a missing topic and an empty one as empty, at once (no group join)', async () => {
    const started = performance.now()
    expect(await collect(transport, `kafka.scan.none.${randomUUID()}`)).toEqual([])
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('reads every partition to its high watermark as of the call: positions, keys, headers; not what comes later', async () => {
    const topic = `kafka.scan.${randomUUID().slice(0, 8)}`
    const sent = await broker.publishBatch(
      topic,
      Array.from({ length: 40 }, (_, i) => ({ data: i, key: `k${i % 7}`, headers: { tenant: 'Łódź' } })),
    )
    let later = false
    const got = await collect(transport, topic, async () => {
      if (later) return
      later = true
      await broker.publishBatch(
        topic,
        Array.from({ length: 10 }, (_, i) => ({ data: 100 + i, key: `k${i % 7}` })),
      )
    })
    expect(got.map((m) => m.headers['ce-id']).sort()).toEqual(sent.map((s) => s.id).sort())
    expect(new Set(got.map((m) => m.position)).size).toBe(40)
    for (const m of got) {
      expect(m.position).toMatch(/^\d+:\d+$/)
      expect(m.headers.tenant).toBe('Łódź')
      const n = JSON.parse(Buffer.from(m.value).toString()) as number
      expect(m.key).toBe(`k${n % 7}`)
    }
    // Within a partition, in offset order.
    const byPartition = new Map<string, number[]>()
    for (const m of got) {
      const [partition, offset] = m.position.split(':') as [string, string]
      byPartition.set(partition, [...(byPartition.get(partition) ?? []), Number(offset)])
    }
    for (const offsets of byPartition.values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b))
  }, 30_000)
})
