/**
 * scanJetStream against the real server (the JetStream transport's `scan`; the redrive contract
 * itself runs in broker.integration.test.ts and bridge/nats.integration.test.ts).
 */
import { randomUUID } from 'node:crypto'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNatsTransport, streamNameFor } from '../../src/adapters/nats/index.js'
import { scanJetStream } from '../../src/adapters/nats/scan.js'
import { type Broker, createBroker, createBrokerOver, type ScannedMessage } from '../../src/index.js'
import { requireEnv } from '../env.js'

const url = requireEnv('NATS_URL')
const topic = (what: string) => `nats.scan.${what}.${randomUUID().slice(0, 8)}`

let nc: NatsConnection
const v3 = async () => {
  nc ??= await connect({ servers: url })
  return { js: jetstream(nc), jsm: await jetstreamManager(nc) }
}
afterAll(async () => {
  await nc?.close()
})

async function collect(scan: AsyncIterable<ScannedMessage>): Promise<ScannedMessage[]> {
  const out: ScannedMessage[] = []
  for await (const message of scan) out.push(message)
  return out
}

describe('scanJetStream (nats.js v3)', () => {
  let broker: Broker
  beforeAll(async () => {
    broker = createBrokerOver(await createNatsTransport({ servers: [url], jetstream: true }))
  })
  afterAll(async () => {
    await broker.close()
  })

  it('reads a subject from its start to its end as of the call: key, headers, body, stream sequences', async () => {
    const { js, jsm } = await v3()
    const t = topic('read')
    const published = await broker.publishBatch(
      t,
      Array.from({ length: 300 }, (_, i) => ({ data: { i }, key: `k ${i % 3}`, headers: { tenant: 'Łódź' } })),
    )
    const got = await collect(scanJetStream({ js, jsm, subject: t, batch: 64 }))
    expect(got.map((m) => m.headers['ce-id'])).toEqual(published.map((p) => p.id))
    expect(got.map((m) => m.position)).toEqual(Array.from({ length: 300 }, (_, i) => String(i + 1)))
    expect(got[4]).toMatchObject({ topic: t, key: 'k 1', headers: { tenant: 'Łódź' } })
    expect(JSON.parse(Buffer.from(got[4]?.value as Uint8Array).toString())).toEqual({ i: 4 })
    expect(Object.keys(got[0]?.headers ?? {}).some((h) => h.startsWith('nats-'))).toBe(false)
    // The ordered consumer is gone with the scan.
    const consumers = await jsm.consumers.list(streamNameFor(t)).next()
    expect(consumers).toEqual([])
  })

  it('stops at the end as of the call though more is published while it reads', async () => {
    const { js, jsm } = await v3()
    const t = topic('moving')
    await broker.publishBatch(
      t,
      Array.from({ length: 50 }, (_, i) => ({ data: i })),
    )
    const got: ScannedMessage[] = []
    for await (const message of scanJetStream({ js, jsm, subject: t, batch: 10 })) {
      got.push(message)
      if (got.length === 5) await broker.publishBatch(t, [{ data: 'later' }, { data: 'later' }])
    }
    expect(got).toHaveLength(50)
  })

  it('scans a subject no stream holds, or a given stream without it, as empty', async () => {
    const { js, jsm } = await v3()
    expect(await collect(scanJetStream({ js, jsm, subject: topic('nothing') }))).toEqual([])
    const t = topic('other')
    await broker.publish(t, 1)
    const stream = streamNameFor(t)
    expect(await collect(scanJetStream({ js, jsm, subject: `${t}.not-here`, stream }))).toEqual([])
    expect(await collect(scanJetStream({ js, jsm, subject: t, stream: 'BP_no_such_stream' }))).toEqual([])
  })

  it('ends with the abort signal', async () => {
    const { js, jsm } = await v3()
    const t = topic('abort')
    await broker.publishBatch(
      t,
      Array.from({ length: 20 }, (_, i) => ({ data: i })),
    )
    const abort = new AbortController()
    const got: ScannedMessage[] = []
    const reading = (async () => {
      for await (const message of scanJetStream({ js, jsm, subject: t, batch: 5, signal: abort.signal })) {
        got.push(message)
        if (got.length === 3) abort.abort(new Error('enough'))
      }
    })()
    await expect(reading).rejects.toThrow('enough')
    expect(got).toHaveLength(3)
  })
})

describe('core NATS', () => {
  it('refuses to list or replay dead letters: it keeps no messages', async () => {
    const broker = await createBroker(url)
    try {
      await expect(broker.deadLetters(topic('core')).list()).rejects.toMatchObject({
        code: 'MESSAGING_UNSUPPORTED',
        message: expect.stringContaining('keeps no messages'),
      })
    } finally {
      await broker.close()
    }
  })
})
