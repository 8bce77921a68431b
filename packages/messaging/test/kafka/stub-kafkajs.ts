/**
 * Just enough of kafkajs's Kafka, producer, consumer and admin for the adapter's unit tests:
 * records what the adapter asks for and lets a test fire the instrumentation events kafkajs
 * would (join, fetch, crash) and drive `eachBatch` by hand.
 */
import type {
  ConsumerConfig,
  ConsumerRunConfig,
  EachBatchPayload,
  KafkaConfig,
  KafkaMessage,
  ProducerBatch,
} from 'kafkajs'

type Listener = (event: { payload: unknown }) => void

class Instrumented {
  private readonly listeners = new Map<string, Listener[]>()

  on(name: string, listener: Listener): () => void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener])
    return () => {}
  }

  emit(name: string, payload: unknown = null): void {
    for (const listener of this.listeners.get(name) ?? []) listener({ payload })
  }
}

export class StubProducer extends Instrumented {
  readonly events = {
    CONNECT: 'producer.connect',
    DISCONNECT: 'producer.disconnect',
    REQUEST: 'producer.network.request',
    REQUEST_TIMEOUT: 'producer.network.request_timeout',
    REQUEST_QUEUE_SIZE: 'producer.network.request_queue_size',
  }
  readonly batches: ProducerBatch[] = []
  connected = false
  sendError: Error | undefined

  async connect(): Promise<void> {
    this.connected = true
    this.emit(this.events.CONNECT)
  }

  async disconnect(): Promise<void> {
    this.connected = false
  }

  async sendBatch(batch: ProducerBatch): Promise<unknown[]> {
    if (this.sendError) throw this.sendError
    this.batches.push(batch)
    return []
  }
}

export class StubConsumer extends Instrumented {
  readonly events = {
    HEARTBEAT: 'consumer.heartbeat',
    COMMIT_OFFSETS: 'consumer.commit_offsets',
    GROUP_JOIN: 'consumer.group_join',
    FETCH_START: 'consumer.fetch_start',
    FETCH: 'consumer.fetch',
    START_BATCH_PROCESS: 'consumer.start_batch_process',
    END_BATCH_PROCESS: 'consumer.end_batch_process',
    CONNECT: 'consumer.connect',
    DISCONNECT: 'consumer.disconnect',
    STOP: 'consumer.stop',
    CRASH: 'consumer.crash',
    REBALANCING: 'consumer.rebalancing',
    RECEIVED_UNSUBSCRIBED_TOPICS: 'consumer.received_unsubscribed_topics',
    REQUEST: 'consumer.network.request',
    REQUEST_TIMEOUT: 'consumer.network.request_timeout',
    REQUEST_QUEUE_SIZE: 'consumer.network.request_queue_size',
  }
  subscribed: { topics: (string | RegExp)[]; fromBeginning?: boolean } | undefined
  runConfig: ConsumerRunConfig | undefined
  disconnects = 0
  /** Every commitOffsets call, and the disconnect count when it was made. */
  readonly commits: { offsets: { topic: string; partition: number; offset: string }[]; disconnects: number }[] = []
  /** Join and fetch as soon as run() is called, as a healthy cluster would. */
  joinOnRun = true

  constructor(readonly config: ConsumerConfig) {
    super()
  }

  async connect(): Promise<void> {}

  async subscribe(subscription: { topics: (string | RegExp)[]; fromBeginning?: boolean }): Promise<void> {
    this.subscribed = subscription
  }

  async run(config: ConsumerRunConfig): Promise<void> {
    this.runConfig = config
    if (this.joinOnRun) setImmediate(() => this.joinAndFetch())
  }

  joinAndFetch(): void {
    this.emit(this.events.GROUP_JOIN, { groupId: this.config.groupId, memberAssignment: {} })
    this.emit(this.events.FETCH, { numberOfBatches: 0, duration: 1, nodeId: 0 })
  }

  async commitOffsets(offsets: { topic: string; partition: number; offset: string }[]): Promise<void> {
    this.commits.push({ offsets, disconnects: this.disconnects })
  }

  async disconnect(): Promise<void> {
    this.disconnects++
  }
}

export class StubAdmin {
  readonly calls: string[] = []
  created: unknown[] = []
  createError: Error | undefined

  constructor(private readonly existing: string[]) {}

  async connect(): Promise<void> {
    this.calls.push('connect')
  }

  async disconnect(): Promise<void> {
    this.calls.push('disconnect')
  }

  async listTopics(): Promise<string[]> {
    this.calls.push('listTopics')
    return this.existing
  }

  async createTopics(options: { topics: unknown[] }): Promise<boolean> {
    this.calls.push('createTopics')
    if (this.createError) throw this.createError
    this.created = options.topics
    return true
  }
}

export class StubKafka {
  /** Every instance the adapter created, newest last. */
  static readonly instances: StubKafka[] = []
  /** Applied to the next instances: topics that exist, createTopics failure, join on run. */
  static setup: { existingTopics: string[]; createError: Error | undefined; joinOnRun: boolean } = {
    existingTopics: [],
    createError: undefined,
    joinOnRun: true,
  }
  readonly producers: StubProducer[] = []
  readonly consumers: StubConsumer[] = []
  readonly admins: StubAdmin[] = []

  constructor(readonly config: KafkaConfig) {
    StubKafka.instances.push(this)
  }

  static get last(): StubKafka {
    const last = StubKafka.instances[StubKafka.instances.length - 1]
    if (!last) throw new Error('no Kafka instance was created')
    return last
  }

  producer(): StubProducer {
    const producer = new StubProducer()
    this.producers.push(producer)
    return producer
  }

  consumer(config: ConsumerConfig): StubConsumer {
    const consumer = new StubConsumer(config)
    consumer.joinOnRun = StubKafka.setup.joinOnRun
    this.consumers.push(consumer)
    return consumer
  }

  admin(): StubAdmin {
    const admin = new StubAdmin(StubKafka.setup.existingTopics)
    admin.createError = StubKafka.setup.createError
    this.admins.push(admin)
    return admin
  }
}

/** A batch payload whose calls are recorded, for driving `eachBatch` by hand. */
export function stubBatch(topic: string, messages: Partial<KafkaMessage>[], partition = 0, firstOffset = 0) {
  const calls = { resolved: [] as string[], heartbeats: 0, pauses: 0, commits: 0 }
  let offset = firstOffset
  const full = messages.map(
    (m) =>
      ({
        key: null,
        value: Buffer.from(''),
        timestamp: '0',
        attributes: 0,
        offset: String(offset++),
        headers: {},
        ...m,
      }) as KafkaMessage,
  )
  const payload = {
    batch: { topic, partition, highWatermark: String(offset), messages: full },
    resolveOffset: (o: string) => void calls.resolved.push(o),
    heartbeat: async () => void calls.heartbeats++,
    pause: () => {
      calls.pauses++
      return () => {}
    },
    commitOffsetsIfNecessary: async () => void calls.commits++,
    uncommittedOffsets: () => ({ topics: [] }),
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload
  return { payload, calls }
}
