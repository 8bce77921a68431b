import { type LoggerLike, MessagingError } from '@backplane/messaging'
import type { Admin, Kafka } from 'kafkajs'
import { asError } from './connection.js'
import type { KafkaOptions } from './options.js'

/** @internal Creates the topics of `ensureTopics` that do not exist yet; returns their names. */
export async function ensureTopics(
  admin: Pick<Admin, 'connect' | 'disconnect' | 'listTopics' | 'createTopics'>,
  topics: KafkaOptions['ensureTopics'],
): Promise<string[]> {
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing = topics.filter((t) => !existing.has(t.topic))
    if (missing.length === 0) return []
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.topic,
        // -1: the broker's num.partitions / default.replication.factor.
        numPartitions: t.numPartitions ?? -1,
        replicationFactor: t.replicationFactor ?? -1,
      })),
    })
    return missing.map((t) => t.topic)
  } finally {
    await admin.disconnect()
  }
}

export async function createTopics(kafka: Kafka, options: KafkaOptions, logger: LoggerLike): Promise<void> {
  if (options.ensureTopics.length === 0) return
  try {
    const created = await ensureTopics(kafka.admin(), options.ensureTopics)
    if (created.length > 0) logger.info({ system: 'kafka', topics: created }, 'kafka topics created')
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not create the kafka topics of ensureTopics (${options.ensureTopics.map((t) => t.topic).join(', ')}): ${asError(error).message}`,
      { cause: error },
    )
  }
}
