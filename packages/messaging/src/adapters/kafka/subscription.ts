import { randomUUID } from 'node:crypto'
import { backoffSequence, deferred, withTimeout } from '@backplane/internal'
import {
  type DeliveryHandler,
  type LoggerLike,
  MessagingError,
  type TransportEvents,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@backplane/messaging'
import type { EventEmitter } from 'eventemitter3'
import type { Consumer, Kafka } from 'kafkajs'
import { batchHandler } from './batches.js'
import { consumerConfig } from './config.js'
import { asError, type ConnectionTracker, isConnectionError } from './connection.js'
import { offsetCommitter } from './offsets.js'
import type { KafkaOptions } from './options.js'

function groupIdOf(options: KafkaOptions, group: string, topic: string): string {
  const id = options.groupId(group, topic)
  if (typeof id !== 'string' || id.length === 0) {
    throw new MessagingError(
      'MESSAGING_INVALID_OPTIONS',
      `kafka option groupId returned ${JSON.stringify(id)} for group ${JSON.stringify(group)} on ${topic}; expected a non-empty string`,
    )
  }
  return id
}

export interface Shared {
  kafka: Kafka
  options: KafkaOptions
  logger: LoggerLike
  tracker: ConnectionTracker
  events: EventEmitter<TransportEvents>
}

// Pauses before restarting a consumer kafkajs gave up on: 500 ms doubling up to 30 s.
const RESTART_BACKOFF = { initialDelay: 500, maxDelay: 30_000, factor: 2, jitter: 'none' } as const

export interface KafkaSubscription extends TransportSubscription {
  readonly closing: boolean
}

export async function openSubscription(
  shared: Shared,
  topic: string,
  options: TransportSubscribeOptions,
  deliver: DeliveryHandler,
): Promise<KafkaSubscription> {
  const { kafka, logger, tracker } = shared
  // A group of its own per plain subscriber: Kafka gives every group all the messages.
  const groupId =
    options.group === undefined
      ? `${shared.options.clientId}.subscriber.${randomUUID()}`
      : groupIdOf(shared.options, options.group, topic)
  const context = { system: 'kafka', topic, group: groupId }
  let consumer: Consumer | undefined
  let closing = false
  let closed: Promise<void> | undefined
  let restartTimer: NodeJS.Timeout | undefined
  const restarts = backoffSequence(RESTART_BACKOFF)
  let lastError: Error | undefined
  // Joined, assigned, and one fetch done: the start offsets of a new group are fixed by then
  // (kafkajs looks up "latest" only at its first fetch), so `from: 'latest'` means "after subscribe".
  const ready = deferred()
  let isReady = false
  const committer = offsetCommitter(topic, () => consumer, logger, context)
  const batches = batchHandler(deliver, () => closing, committer, logger)
  let commitTimer: NodeJS.Timeout | undefined

  function watch(current: Consumer): void {
    const { events } = current
    let joined = false
    current.on(events.GROUP_JOIN, ({ payload }) => {
      committer.assigned(payload.memberAssignment?.[topic])
      joined = true
      restarts.reset()
      tracker.up()
    })
    current.on(events.FETCH, () => {
      if (!joined || isReady) return
      isReady = true
      ready.resolve()
    })
    current.on(events.CONNECT, () => tracker.up())
    current.on(events.REQUEST, () => tracker.up())
    current.on(events.REQUEST_TIMEOUT, ({ payload }) => {
      tracker.down(new Error(`kafka request ${payload.apiName} to ${payload.broker} timed out`))
    })
    current.on(events.CRASH, ({ payload }) => onCrash(current, payload.error, payload.restart))
  }

  function onCrash(current: Consumer, error: Error, restarting: boolean): void {
    if (closing || current !== consumer) return
    lastError = error
    if (isConnectionError(error) || restarting) tracker.down(error)
    if (restarting) {
      logger.warn({ ...context, err: error.message }, 'kafka consumer crashed; kafkajs restarts it')
      return
    }
    // kafkajs gives up on errors it deems permanent, some of which are not (a coordinator that
    // is still loading, a busy broker): a subscription must not end that way, nor a subscribe
    // fail on it before subscribeTimeout.
    shared.events.emit(
      'error',
      new Error(`kafka consumer of ${topic} (group ${groupId}) crashed: ${error.message}`, { cause: error }),
    )
    scheduleRestart()
  }

  function scheduleRestart(): void {
    const delay = restarts.next()
    logger.warn({ ...context, delayMs: delay }, 'restarting the kafka consumer')
    restartTimer = setTimeout(() => {
      restartTimer = undefined
      void restart()
    }, delay)
  }

  async function restart(): Promise<void> {
    await consumer?.disconnect().catch(() => {})
    if (closing) return
    try {
      await start()
    } catch (error) {
      if (closing) return
      tracker.down(asError(error))
      scheduleRestart()
    }
  }

  async function start(): Promise<void> {
    const next = kafka.consumer(consumerConfig(shared.options, groupId, () => !closing))
    consumer = next
    watch(next)
    await next.connect()
    await next.subscribe({ topics: [topic], fromBeginning: await startFromBeginning() })
    await next.run({
      eachBatch: batches.handle,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.maxInFlight,
      // Offsets are committed by the committer, in the background (see offsetCommitter).
      autoCommit: false,
    })
    commitTimer ??= setInterval(() => void committer.flush(), shared.options.commitInterval)
    commitTimer.unref()
  }

  /**
   * `from: 'latest'` is for a new group only. Kafka commits nothing for a partition the group has
   * not consumed yet, so once the group exists, a partition without a committed offset must start
   * at its beginning: whatever it holds came after the group started, and starting at its end
   * (after a restart, say) would skip what was published meanwhile.
   */
  async function startFromBeginning(): Promise<boolean> {
    if (options.from === 'earliest' || options.group === undefined) return options.from === 'earliest'
    const admin = kafka.admin()
    try {
      await admin.connect()
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return (committed?.partitions ?? []).some((p) => Number(p.offset) >= 0)
    } catch (error) {
      logger.debug(
        { ...context, err: asError(error).message },
        'could not read committed offsets; starting a new group at the latest',
      )
      return false
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  async function stop(): Promise<void> {
    closing = true
    clearTimeout(restartTimer)
    clearInterval(commitTimer)
    // Deliveries in progress end (acked or released), then what was acked is committed while
    // the consumer is still a member; disconnect then stops fetching, leaves the group and
    // closes the connections.
    await batches.idle()
    await committer.flush()
    await consumer?.disconnect().catch((error: unknown) => {
      logger.warn({ ...context, err: asError(error).message }, 'kafka consumer did not disconnect cleanly')
    })
  }

  const timedOut = () =>
    new MessagingError(
      'MESSAGING_TIMEOUT',
      `subscribe to ${topic}: the consumer did not join group ${groupId} within ${shared.options.subscribeTimeout} ms (subscribeTimeout)${lastError ? `; last error: ${lastError.message}` : ''}`,
      { cause: lastError },
    )
  try {
    // A first connect that fails has been retried by kafkajs already: that fails subscribe.
    await start()
    await withTimeout(ready.promise, shared.options.subscribeTimeout, timedOut)
  } catch (error) {
    await stop()
    throw error
  }

  return {
    get closing() {
      return closing
    },
    close() {
      closed ??= stop()
      return closed
    },
  }
}
