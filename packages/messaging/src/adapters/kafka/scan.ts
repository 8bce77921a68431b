import { randomUUID } from 'node:crypto'
import { withTimeout } from '@backplane/internal'
import { type LoggerLike, MessagingError, type ScannedMessage, type TransportScanOptions } from '@backplane/messaging'
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs'
import { consumerConfig } from './config.js'
import { asError } from './connection.js'
import { fromKafkaHeaders } from './headers.js'
import type { KafkaOptions } from './options.js'

/**
 * Reads a topic from the start to its end as of the call. Kafka reads only through a consumer
 * group (kafkajs has no group-less fetch), so the scan takes the high watermarks first
 * (`admin.fetchTopicOffsets`), then reads with a group of its own, never committed, until every
 * partition reached its mark, and leaves. An empty topic joins no group at all. A join takes
 * the cluster's `group.initial.rebalance.delay.ms` (3 s by default, and on the librdkafka mock):
 * a scan of a non-empty topic costs about that. The empty group left behind holds no offsets;
 * the cluster forgets it (`offsets.retention.minutes`). The mock refuses `deleteGroups`, so it is
 * not deleted.
 */

export interface ScanContext {
  kafka: Kafka
  options: KafkaOptions
  logger: LoggerLike
}

const EMPTY = new Uint8Array(0)
// Messages read ahead of the caller before the partitions wait for it.
const READ_AHEAD = 512

/** partition -> offset the scan reads up to (excluded), for the partitions that hold anything. */
async function highWatermarks(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    // The admin does not create topics; asking for the offsets of a missing one retries for a while.
    if (!(await admin.listTopics()).includes(topic)) return new Map()
    const offsets = await admin.fetchTopicOffsets(topic)
    const marks = new Map<number, bigint>()
    for (const { partition, high, low } of offsets) if (BigInt(high) > BigInt(low)) marks.set(partition, BigInt(high))
    return marks
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

function scanned(topic: string, partition: number, message: KafkaMessage): ScannedMessage {
  return {
    topic,
    key: message.key === null ? undefined : message.key.toString('utf8'),
    headers: fromKafkaHeaders(message.headers),
    value: message.value ?? EMPTY,
    position: `${partition}:${message.offset}`,
  }
}

/** Messages handed from kafkajs's batches to the caller's loop, READ_AHEAD at most. */
function handover() {
  const queue: ScannedMessage[] = []
  let failure: { error: unknown } | undefined
  let ended = false
  let wake: (() => void) | undefined
  let room: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  return {
    async push(message: ScannedMessage, heartbeat: () => Promise<void>): Promise<void> {
      queue.push(message)
      notify()
      while (queue.length >= READ_AHEAD && !ended && failure === undefined) {
        await new Promise<void>((resolve) => {
          room = resolve
          setTimeout(resolve, 1000).unref()
        })
        await heartbeat()
      }
    },
    end(): void {
      ended = true
      notify()
      room?.()
    },
    fail(error: unknown): void {
      failure ??= { error }
      notify()
      room?.()
    },
    async *drain(): AsyncGenerator<ScannedMessage> {
      for (;;) {
        if (failure) throw failure.error
        const next = queue.shift()
        if (next) {
          if (queue.length < READ_AHEAD / 2) room?.()
          yield next
        } else if (ended) return
        else await new Promise<void>((resolve) => (wake = resolve))
      }
    },
  }
}

export async function* scanTopic(
  ctx: ScanContext,
  topic: string,
  { signal }: TransportScanOptions,
): AsyncGenerator<ScannedMessage> {
  signal?.throwIfAborted()
  const marks = await highWatermarks(ctx.kafka, topic)
  if (marks.size === 0) return
  const groupId = `${ctx.options.clientId}.scan.${randomUUID()}`
  const left = new Set(marks.keys())
  const queue = handover()
  const consumer: Consumer = ctx.kafka.consumer({
    ...consumerConfig(ctx.options, groupId, () => false),
    allowAutoTopicCreation: false,
  })
  const onAbort = () => queue.fail(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  consumer.on(consumer.events.CRASH, ({ payload }) => queue.fail(payload.error))

  async function eachBatch({ batch, pause, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const mark = marks.get(batch.partition)
    if (mark === undefined || !left.has(batch.partition)) {
      pause()
      return
    }
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) return
      if (BigInt(message.offset) >= mark) break
      await queue.push(scanned(topic, batch.partition, message), heartbeat)
    }
    // lastOffset() counts what kafkajs filtered out (control records, compacted ones) too.
    if (BigInt(batch.lastOffset()) + 1n >= mark) {
      left.delete(batch.partition)
      pause()
      if (left.size === 0) queue.end()
    }
  }

  try {
    const joined = (async () => {
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: marks.size, eachBatch })
    })()
    const timeout = ctx.options.subscribeTimeout
    await withTimeout(
      joined,
      timeout,
      () =>
        new MessagingError('MESSAGING_TIMEOUT', `reading ${topic}: could not start a consumer within ${timeout} ms`),
    )
    yield* queue.drain()
  } finally {
    signal?.removeEventListener('abort', onAbort)
    queue.end()
    await consumer.disconnect().catch((error: unknown) => {
      ctx.logger.warn({ system: 'kafka', topic, err: asError(error).message }, 'kafka scan consumer did not disconnect')
    })
  }
}
