import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import { EventEmitter } from 'eventemitter3'
import {
  createDeliveryProcessor,
  type DeadLetterEvent,
  DIRECT,
  type DirectDelivery,
  ENDED,
  type Handler,
} from './consumer.js'
import { createDeadLetters, type DeadLetterOptions, type DeadLetters } from './dead-letters.js'
import { memoryDedupeStore } from './dedupe.js'
import { type EnvelopeOptions, encodeMessage } from './envelope.js'
import { MessagingError } from './errors.js'
import { createKeyedLimiter } from './limiter.js'
import {
  type BrokerOptions,
  brokerOptionsSchema,
  type PublishOptions,
  parseOptions,
  publishOptionsSchema,
  renameBrokerOptions,
  renameSubscribeOptions,
  type SubscribeOptions,
  subscribeOptionsSchema,
} from './options.js'
import { endSpan, injectContext, recordDuration, startSendSpan } from './telemetry.js'
import { schemaIssues, type TopicLike, topicName, topicSchema } from './topic.js'
import {
  type ConnectionState,
  silentLogger,
  type Transport,
  type TransportCapabilities,
  type TransportDelivery,
  type TransportMessage,
  type TransportSubscription,
} from './transport.js'

export interface BrokerEvents {
  connected: () => void
  disconnected: (error?: Error) => void
  error: (error: Error) => void
  /** A message went to its dead-letter topic (or was dropped with `deadLetter: false`). */
  deadLetter: (event: DeadLetterEvent) => void
  /** A de-duplicating subscription skipped a message it had handled. */
  duplicate: (event: { topic: string; group: string | undefined; id: string }) => void
  /** A subscription skipped a replayed dead letter meant for another group (`replayGroup`). */
  replaySkipped: (event: { topic: string; group: string | undefined; id: string; replayGroup: string }) => void
}

export interface BrokerHealth {
  state: ConnectionState
  system: string
  capabilities: TransportCapabilities
  subscriptions: number
  /** When `state` last changed. */
  since: Date
  lastError: string | undefined
}

export interface PublishResult {
  /** The message's CloudEvents id. */
  id: string
}

export interface BatchMessage<T> extends PublishOptions {
  data: T
}

export interface Subscription {
  readonly topic: string
  readonly group: string | undefined
  /** Stops fetching, lets handlers in progress finish (up to `closeTimeout`), acks, leaves. */
  close(): Promise<void>
}

export interface Broker {
  /** Resolves once the broker has accepted the message. */
  publish<T>(topic: TopicLike<T>, data: T, options?: PublishOptions): Promise<PublishResult>
  /** Publishes many at once (one round trip where the broker allows); resolves once all are accepted. */
  publishBatch<T>(topic: TopicLike<T>, messages: BatchMessage<T>[]): Promise<PublishResult[]>
  subscribe<T>(topic: TopicLike<T>, handler: Handler<T>, options?: SubscribeOptions): Promise<Subscription>
  health(): BrokerHealth
  /** The dead letters of `topic`: list, inspect and replay them (brokers that keep messages). */
  deadLetters(topic: TopicLike<unknown>, options?: DeadLetterOptions): DeadLetters
  readonly events: EventEmitter<BrokerEvents>
  /** Closes every subscription (gracefully), then the connection. */
  close(): Promise<void>
}

function isStringRecord(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  for (const name in value) {
    if (typeof (value as Record<string, unknown>)[name] !== 'string') return false
    // Left to the schema, which refuses it and says why.
    if (name.length === 9 && name.toLowerCase() === '__proto__') return false
  }
  return true
}

const nonEmpty = (value: unknown) => typeof value === 'string' && value.length > 0

/**
 * Publish options in their common shapes (key, headers, id, type, source, contentType), checked
 * without the schema: a parse per message is a good part of what publishing costs. Anything
 * else, or anything wrong, returns undefined and goes through the schema, for its checks and its
 * error messages. With `batchEntry`, the entry's own `data` is not an option.
 */
function quickOptions(raw: object, batchEntry: boolean): EnvelopeOptions | undefined {
  for (const name in raw) {
    const value = (raw as Record<string, unknown>)[name]
    if (value === undefined) continue
    switch (name) {
      case 'key':
        if (typeof value !== 'string') return undefined
        break
      case 'id':
      case 'type':
      case 'source':
      case 'contentType':
        if (!nonEmpty(value)) return undefined
        break
      case 'headers':
        if (!isStringRecord(value)) return undefined
        break
      case 'data':
        if (!batchEntry) return undefined
        break
      default:
        return undefined
    }
  }
  return raw as EnvelopeOptions
}

function defaultSource(): string {
  return `//${hostname()}/${process.title}/${process.pid}`
}

/** Builds the broker-neutral API over a connected transport. */
export function createBrokerOver(transport: Transport, options: BrokerOptions = {}): Broker {
  const opts = parseOptions(brokerOptionsSchema, renameBrokerOptions(options), 'broker')
  const logger = opts.logger ?? silentLogger
  const source = opts.source ?? defaultSource()
  const events = new EventEmitter<BrokerEvents>()
  const subscriptions = new Set<Subscription>()
  let since = new Date()
  let lastError: string | undefined
  let closing: Promise<void> | undefined

  transport.events.on('connected', () => {
    since = new Date()
    logger.info({ system: transport.system }, 'broker connected')
    events.emit('connected')
  })
  transport.events.on('disconnected', (error) => {
    since = new Date()
    if (error) lastError = error.message
    logger.warn({ system: transport.system, err: error?.message }, 'broker disconnected')
    events.emit('disconnected', error)
  })
  transport.events.on('error', (error) => {
    lastError = error.message
    logger.error({ system: transport.system, err: error.message }, 'broker error')
    if (events.listenerCount('error') > 0) events.emit('error', error)
  })

  function assertOpen(): void {
    if (closing)
      throw new MessagingError('MESSAGING_CLOSED', 'the broker is closed: create a new one to publish or subscribe')
  }

  function envelope<T>(
    topic: TopicLike<T>,
    data: T,
    raw: PublishOptions | BatchMessage<T> | undefined,
    batchEntry = false,
  ): TransportMessage {
    const name = topicName(topic)
    let publishOptions: EnvelopeOptions | undefined =
      raw === undefined || raw === null ? {} : quickOptions(raw, batchEntry)
    if (publishOptions === undefined) {
      let options = raw as PublishOptions
      if (batchEntry) {
        const { data: _, ...rest } = raw as BatchMessage<T>
        options = rest
      }
      publishOptions = parseOptions(publishOptionsSchema, options, 'publish') as EnvelopeOptions
    }
    const schema = topicSchema(topic)
    if (schema) {
      const checked = schema.safeParse(data)
      if (!checked.success) {
        const details = schemaIssues(checked.error)
        throw new MessagingError(
          'MESSAGING_INVALID_MESSAGE',
          `message for ${name} does not match its schema: ${details.join('; ')}`,
          { details },
        )
      }
    }
    return encodeMessage(name, data, source, publishOptions)
  }

  async function send(messages: TransportMessage[], destination: string): Promise<void> {
    const attributes = {
      system: transport.system,
      destination,
      messageId: messages.length === 1 ? messages[0]?.headers['ce-id'] : undefined,
    }
    const { span, context: sendContext } = startSendSpan(attributes)
    // One context for the whole batch: inject it once, then copy what it wrote (nothing at all
    // without a propagator or a trace), rather than going through the propagation API per message.
    const trace: Record<string, string> = {}
    injectContext(sendContext, trace)
    for (const name in trace) for (const message of messages) message.headers[name] = trace[name] as string
    const started = performance.now()
    let failure: unknown
    try {
      await transport.publish(messages)
    } catch (error) {
      failure = error
      throw MessagingError.is(error)
        ? error
        : new MessagingError(
            'MESSAGING_PUBLISH_FAILED',
            `publish to ${destination} failed: ${(error as Error)?.message ?? error}`,
            {
              cause: error,
            },
          )
    } finally {
      endSpan(span, failure)
      recordDuration('send', started, attributes, failure)
    }
  }

  async function subscribe<T>(topic: TopicLike<T>, handler: Handler<T>, raw?: SubscribeOptions): Promise<Subscription> {
    assertOpen()
    if (typeof handler !== 'function') {
      throw new MessagingError(
        'MESSAGING_INVALID_OPTIONS',
        'subscribe: expected a handler function as the second argument',
      )
    }
    const name = topicName(topic)
    const options = parseOptions(subscribeOptionsSchema, renameSubscribeOptions(raw), 'subscribe')
    if (!transport.capabilities.atLeastOnce && options.group !== undefined && options.retry.maxAttempts > 1) {
      throw new MessagingError(
        'MESSAGING_UNSUPPORTED',
        `${transport.system} delivers at most once: a group subscription with retries (retry.maxAttempts > 1) needs an at-least-once broker; use JetStream (add ?jetstream=true to the nats:// URL) or set retry: { maxAttempts: 1 }`,
      )
    }
    const dedupe =
      options.dedupe === undefined
        ? undefined
        : options.dedupe === true
          ? { store: memoryDedupeStore(), ttl: 24 * 3_600_000 }
          : { store: options.dedupe.store ?? memoryDedupeStore(), ttl: options.dedupe.ttl }
    const abort = new AbortController()
    const { process, processNow } = createDeliveryProcessor<T>(
      {
        topic: name,
        group: options.group,
        transport,
        options,
        schema: topicSchema(topic),
        dedupe,
        logger,
        signal: abort.signal,
        onDeadLetter: (event) => events.emit('deadLetter', event),
        onDuplicate: (id) => events.emit('duplicate', { topic: name, group: options.group, id }),
        onReplaySkipped: (id, replayGroup) =>
          events.emit('replaySkipped', { topic: name, group: options.group, id, replayGroup }),
      },
      handler,
    )
    const limiter = createKeyedLimiter(options.concurrency, options.ordered)
    // The processor releases what it could not finish (a failed dead-letter publish, say).
    const deliver = (delivery: TransportDelivery) => limiter.run(delivery.key, process, delivery)
    const ended = (delivery: DirectDelivery, failed: boolean) => {
      limiter.finish(delivery.key)
      delivery[ENDED](failed)
    }
    // The same for a transport that takes the direct way (see DIRECT): no promise per message.
    const processDirect = (delivery: DirectDelivery) => {
      let pending: Promise<void> | undefined
      try {
        pending = processNow(delivery)
      } catch (error) {
        pending = Promise.reject(error)
      }
      if (pending === undefined) ended(delivery, false)
      else
        pending.then(
          () => ended(delivery, false),
          () => ended(delivery, true),
        )
    }
    Object.defineProperty(deliver, DIRECT, {
      value: (delivery: DirectDelivery) => limiter.start(delivery.key, processDirect, delivery),
    })
    let inner: TransportSubscription
    try {
      inner = await transport.subscribe(
        name,
        { group: options.group, from: options.from, maxInFlight: options.concurrency },
        deliver,
      )
    } catch (error) {
      throw MessagingError.is(error)
        ? error
        : new MessagingError(
            'MESSAGING_SUBSCRIBE_FAILED',
            `subscribe to ${name} failed: ${(error as Error)?.message ?? error}`,
            {
              cause: error,
            },
          )
    }
    let closed: Promise<void> | undefined
    const subscription: Subscription = {
      topic: name,
      group: options.group,
      close: () => {
        closed ??= (async () => {
          subscriptions.delete(subscription)
          let timer: NodeJS.Timeout | undefined
          const timeout = new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), opts.closeTimeout)
          })
          // Retry waits end now; handlers already running get closeTimeout to finish.
          abort.abort()
          const outcome = await Promise.race([inner.close().then(() => 'closed' as const), timeout])
          clearTimeout(timer)
          if (outcome === 'timeout') {
            logger.warn(
              { topic: name, group: options.group, timeoutMs: opts.closeTimeout },
              'handlers still running at close: their messages will be redelivered',
            )
          }
        })()
        return closed
      },
    }
    subscriptions.add(subscription)
    return subscription
  }

  return {
    async publish(topic, data, publishOptions) {
      assertOpen()
      const message = envelope(topic, data, publishOptions)
      await send([message], message.topic)
      return { id: message.headers['ce-id'] as string }
    },
    async publishBatch(topic, messages) {
      assertOpen()
      if (!Array.isArray(messages))
        throw new MessagingError('MESSAGING_INVALID_OPTIONS', 'publishBatch: expected an array of { data, ...options }')
      const encoded = messages.map((m) => envelope(topic, m.data, m, true))
      if (encoded.length > 0) await send(encoded, topicName(topic))
      return encoded.map((m) => ({ id: m.headers['ce-id'] as string }))
    },
    subscribe,
    health: () => ({
      state: closing ? 'closed' : transport.state(),
      system: transport.system,
      capabilities: transport.capabilities,
      subscriptions: subscriptions.size,
      since,
      lastError,
    }),
    deadLetters: (topic, deadLetterOptions) =>
      createDeadLetters({ transport, source, logger, assertOpen }, topicName(topic), deadLetterOptions),
    events,
    close() {
      closing ??= (async () => {
        await Promise.all([...subscriptions].map((s) => s.close()))
        await transport.close()
      })()
      return closing
    },
  }
}
