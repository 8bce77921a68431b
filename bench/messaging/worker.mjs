// One measurement in its own process: node bench/messaging/worker.mjs <variant> <throughput|latency> <count>
// Prints one JSON line: { variant, mode, count, handled, duplicates, msgPerSec | p50Ms, p99Ms }.
import { randomUUID } from 'node:crypto'

const [variant, mode, countArg] = process.argv.slice(2)
const COUNT = Number(countArg)
const BATCH = 100
const payload = (i) => ({ i, orderId: `o-${i}`, amount: 42.5, currency: 'EUR', t: performance.now() })

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

/** Counts handled messages and resolves when every index has been seen (duplicates are counted). */
function tracker(count) {
  const seen = new Uint8Array(count)
  let handled = 0
  let duplicates = 0
  let resolve
  const done = new Promise((r) => (resolve = r))
  return {
    done,
    mark(i) {
      if (seen[i]) duplicates++
      else {
        seen[i] = 1
        if (++handled === count) resolve()
      }
    },
    get handled() {
      return handled
    },
    get duplicates() {
      return duplicates
    },
  }
}

// --- @backplane/messaging on any broker ---------------------------------------------------
// `cleanup(topic)` runs after the broker closed (outside the measurement): what the run left on
// the server.
async function ours(url, brokerOptions, subscribeOptions, cleanup) {
  const { createBroker } = await import('@backplane/messaging')
  const broker = await createBroker(url, brokerOptions)
  const topic = `bench.${randomUUID().slice(0, 8)}`
  return {
    async subscribe(onMessage) {
      await broker.subscribe(topic, (m) => onMessage(m.data), { group: 'bench', from: 'earliest', ...subscribeOptions })
    },
    async publishBatch(from, n) {
      await broker.publishBatch(
        topic,
        Array.from({ length: n }, (_, k) => ({ data: payload(from + k), key: `k${(from + k) % 16}` })),
      )
    },
    async close() {
      await broker.close()
      await cleanup?.(topic)
    },
  }
}

/** Deletes the stream our adapter made for `topic` (BP_bench_…), as the raw side deletes its own. */
async function deleteStreamOf(topic) {
  const { connect } = await import('@nats-io/transport-node')
  const { jetstreamManager } = await import('@nats-io/jetstream')
  const nc = await connect({ servers: process.env.NATS_URL })
  try {
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(await jsm.streams.find(topic))
  } finally {
    await nc.close()
  }
}

// --- the floor: only the per-message work the envelope requires, no broker ----------------
// A fresh id, the publish time, the body JSON-encoded into bytes, and decoded again for the
// handler, in a plain loop: what no implementation honouring the contract can skip. A bound on
// memory:// throughput on this machine, not a competitor.
function floor() {
  let handler
  return {
    async subscribe(onMessage) {
      handler = onMessage
    },
    async publishBatch(from, n) {
      const stored = []
      for (let k = 0; k < n; k++) {
        const data = payload(from + k)
        stored.push({
          id: randomUUID(),
          time: new Date().toISOString(),
          key: `k${(from + k) % 16}`,
          value: Buffer.from(JSON.stringify(data)),
        })
      }
      queueMicrotask(() => {
        for (const m of stored) handler(JSON.parse(m.value.toString()))
      })
    },
    async close() {},
  }
}

// --- raw kafkajs: the same batching (sendBatch of 100), acks all, JSON both ways ----------
async function rawKafka() {
  const { Kafka, logLevel } = await import('kafkajs')
  const kafka = new Kafka({
    clientId: 'bench-raw',
    brokers: process.env.KAFKA_BROKERS.split(','),
    logLevel: logLevel.NOTHING,
  })
  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  const topic = `bench.raw.${randomUUID().slice(0, 8)}`
  const consumer = kafka.consumer({ groupId: `bench-${randomUUID()}`, sessionTimeout: 6000, maxWaitTimeInMs: 100 })
  return {
    async subscribe(onMessage) {
      await consumer.connect()
      // The topic must exist before the group joins, as our adapter's auto-creation does.
      await producer.send({ topic, messages: [{ key: 'warmup', value: JSON.stringify({ i: -1 }) }], acks: -1 })
      await consumer.subscribe({ topic, fromBeginning: true })
      const joined = new Promise((r) => consumer.on(consumer.events.GROUP_JOIN, r))
      await consumer.run({
        partitionsConsumedConcurrently: 4,
        eachMessage: async ({ message }) => {
          const data = JSON.parse(message.value.toString())
          if (data.i >= 0) onMessage(data)
        },
      })
      await joined
    },
    async publishBatch(from, n) {
      await producer.sendBatch({
        acks: -1,
        topicMessages: [
          {
            topic,
            messages: Array.from({ length: n }, (_, k) => ({
              key: `k${(from + k) % 16}`,
              value: JSON.stringify(payload(from + k)),
              headers: { 'ce-id': randomUUID() },
            })),
          },
        ],
      })
    },
    async close() {
      await consumer.disconnect()
      await producer.disconnect()
    },
  }
}

// --- raw nats.js v3 JetStream: pipelined js.publish with msgID, pull consumer with explicit ack
// (@nats-io/transport-node + @nats-io/jetstream; v3 has no codecs: JSON by hand, as v2's JSONCodec did)
async function rawJetStream() {
  const { connect } = await import('@nats-io/transport-node')
  const { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } = await import('@nats-io/jetstream')
  const nc = await connect({ servers: process.env.NATS_URL })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const topic = `bench.raw.${randomUUID().slice(0, 8)}`
  const stream = `BENCHRAW_${randomUUID().slice(0, 8)}`
  await jsm.streams.add({ name: stream, subjects: [topic] })
  await jsm.consumers.add(stream, {
    durable_name: 'bench',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  })
  let messages
  return {
    async subscribe(onMessage) {
      const consumer = await js.consumers.get(stream, 'bench')
      messages = await consumer.consume({ max_messages: 256 })
      void (async () => {
        for await (const m of messages) {
          onMessage(m.json())
          m.ack()
        }
      })()
    },
    async publishBatch(from, n) {
      await Promise.all(
        Array.from({ length: n }, (_, k) =>
          js.publish(topic, JSON.stringify(payload(from + k)), { msgID: randomUUID() }),
        ),
      )
    },
    async close() {
      await messages?.close()
      await jsm.streams.delete(stream)
      await nc.drain()
    },
  }
}

const kafkaUrl = () => `kafka://${process.env.KAFKA_BROKERS}`
const variants = {
  'memory/ours': () => ours('memory://bench', {}, { concurrency: 64 }),
  'memory/floor': async () => floor(),
  'kafka/ours': () => ours(kafkaUrl(), { kafka: { sessionTimeout: 6000, maxWaitTime: 100 } }, { concurrency: 4 }),
  'kafka/raw': () => rawKafka(),
  'jetstream/ours': () => ours(`${process.env.NATS_URL}?jetstream=true`, {}, { concurrency: 64 }, deleteStreamOf),
  'jetstream/raw': () => rawJetStream(),
}

async function throughput(side) {
  const track = tracker(COUNT)
  await side.subscribe((data) => track.mark(data.i))
  const start = performance.now()
  // Keep a few batches in flight, as a busy producer would.
  const inFlight = []
  for (let i = 0; i < COUNT; i += BATCH) {
    inFlight.push(side.publishBatch(i, Math.min(BATCH, COUNT - i)))
    if (inFlight.length >= 8) await inFlight.shift()
  }
  await Promise.all(inFlight)
  const timeout = new Promise((r) => setTimeout(r, 120_000).unref())
  await Promise.race([track.done, timeout])
  const seconds = (performance.now() - start) / 1000
  return { handled: track.handled, duplicates: track.duplicates, msgPerSec: track.handled / seconds }
}

async function latency(side) {
  const latencies = []
  let waiting
  await side.subscribe((data) => {
    latencies.push(performance.now() - data.t)
    waiting?.()
  })
  for (let i = 0; i < COUNT; i++) {
    const got = new Promise((r) => (waiting = r))
    await side.publishBatch(i, 1)
    await Promise.race([got, new Promise((r) => setTimeout(r, 10_000))])
  }
  const sorted = [...latencies].sort((a, b) => a - b)
  return { handled: latencies.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
}

if (!variants[variant] || !['throughput', 'latency'].includes(mode) || !(COUNT > 0)) {
  process.stderr.write(`usage: worker.mjs <${Object.keys(variants).join('|')}> <throughput|latency> <count>\n`)
  process.exit(2)
}
const side = await variants[variant]()
const result = mode === 'throughput' ? await throughput(side) : await latency(side)
await side.close()
process.stdout.write(`${JSON.stringify({ variant, mode, count: COUNT, ...result })}\n`)
process.exit(0)
