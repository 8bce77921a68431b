import {
  type LoggerLike,
  MessagingError,
  silentLogger,
  type Transport,
  type TransportEvents,
  type TransportMessage,
} from '@backplane/messaging'
import { EventEmitter } from 'eventemitter3'
import kafkajs, { type Message, type Producer } from 'kafkajs'
import { kafkaConfig } from './config.js'
import { asError, type ConnectionTracker, isConnectionError, trackConnection } from './connection.js'
import { toKafkaMessage } from './headers.js'
import { type KafkaOptions, type KafkaTransportOptions, parseKafkaOptions, renameKafkaOptions } from './options.js'
import { stickyPartitioner } from './partitions.js'
import { scanTopic } from './scan.js'
import { type KafkaSubscription, openSubscription, type Shared } from './subscription.js'
import { createTopics } from './topics.js'
import { optionsFromUrl } from './url.js'

function watchProducer(producer: Producer, tracker: ConnectionTracker): void {
  const { events } = producer
  producer.on(events.CONNECT, () => tracker.up())
  producer.on(events.REQUEST, () => tracker.up())
  producer.on(events.REQUEST_TIMEOUT, ({ payload }) => {
    tracker.down(new Error(`kafka request ${payload.apiName} to ${payload.broker} timed out`))
  })
}

function groupByTopic(messages: TransportMessage[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>()
  for (const message of messages) {
    let list = byTopic.get(message.topic)
    if (!list) {
      list = []
      byTopic.set(message.topic, list)
    }
    list.push(toKafkaMessage(message))
  }
  return [...byTopic].map(([topic, list]) => ({ topic, messages: list }))
}

async function connectProducer(producer: Producer, options: KafkaOptions): Promise<void> {
  try {
    await producer.connect()
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not connect to Kafka at ${options.brokers.join(', ')}: ${asError(error).message}`,
      { cause: error },
    )
  }
}

/** Connects to a Kafka cluster; the transport's producer is connected when this resolves. */
export async function createKafkaTransport(input: KafkaTransportOptions): Promise<Transport> {
  const options = parseKafkaOptions(input)
  const logger = options.logger ?? silentLogger
  const events = new EventEmitter<TransportEvents>()
  const tracker = trackConnection(events)
  const kafka = new kafkajs.Kafka(kafkaConfig(options, (error) => tracker.down(error)))
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    // The librdkafka mock refuses idempotent producers; a retried send may duplicate.
    idempotent: false,
    createPartitioner: stickyPartitioner(),
  })
  watchProducer(producer, tracker)
  await connectProducer(producer, options)
  try {
    await createTopics(kafka, options, logger)
  } catch (error) {
    await producer.disconnect().catch(() => {})
    throw error
  }
  tracker.up()

  const shared: Shared = { kafka, options, logger, tracker, events }
  const subscriptions = new Set<KafkaSubscription>()
  let closing: Promise<void> | undefined

  function assertOpen(): void {
    if (closing) throw new MessagingError('MESSAGING_CLOSED', 'the kafka transport is closed')
  }

  return {
    system: 'kafka',
    capabilities: { durable: true, replay: true, ordering: 'key', atLeastOnce: true },
    events,
    state: () => tracker.state(),

    async publish(messages) {
      assertOpen()
      if (messages.length === 0) return
      try {
        await producer.sendBatch({ acks: -1, topicMessages: groupByTopic(messages) })
      } catch (error) {
        if (isConnectionError(error)) tracker.down(asError(error))
        throw error
      }
      tracker.up()
    },

    async subscribe(topic, subscribeOptions, deliver) {
      assertOpen()
      const subscription = await openSubscription(shared, topic, subscribeOptions, deliver)
      if (closing) {
        await subscription.close()
        throw new MessagingError('MESSAGING_CLOSED', 'the kafka transport was closed while subscribing')
      }
      subscriptions.add(subscription)
      return {
        async close() {
          subscriptions.delete(subscription)
          await subscription.close()
        },
      }
    },

    scan(topic, scanOptions) {
      assertOpen()
      return scanTopic(shared, topic, scanOptions)
    },

    close() {
      closing ??= (async () => {
        // Subscriptions the core is already closing are not waited for again: their handlers
        // may outlive the core's close timeout.
        await Promise.all([...subscriptions].filter((s) => !s.closing).map((s) => s.close()))
        subscriptions.clear()
        await producer.disconnect().catch((error: unknown) => {
          logger.warn({ system: 'kafka', err: asError(error).message }, 'kafka producer did not disconnect cleanly')
        })
        tracker.close()
      })()
      return closing
    },
  }
}

/** For createBroker('kafka://host:9092?...'): the `kafka` broker options win over the URL's. */
export async function createTransport(
  url: URL,
  options: { logger: LoggerLike | undefined; settings: Record<string, unknown> },
): Promise<Transport> {
  const fromUrl = optionsFromUrl(url)
  // Old names renamed on each side first, so that the settings still win over the URL.
  const merged: Record<string, unknown> = { ...fromUrl, ...renameKafkaOptions(options.settings) }
  if (merged.logger === undefined && options.logger) merged.logger = options.logger
  return createKafkaTransport(merged as KafkaTransportOptions)
}
