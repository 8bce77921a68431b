import { randomUUID } from 'node:crypto'
import {
  type DeliveryHandler,
  type LoggerLike,
  MessagingError,
  type Transport,
  type TransportMessage,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@backplane/messaging'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { drain } from './connection.js'
import { watchConnection } from './connection-watch.js'
import { type ConsumerSpec, ensureConsumer } from './consumers.js'
import { closedError, errorText, isNoResponders, publishError } from './errors.js'
import { toNatsHeaders } from './headers.js'
import { checkSubject, checkSubjectForPublish, consumerNameFor } from './names.js'
import type { ResolvedNatsOptions } from './options.js'
import { pubAckInbox } from './pubacks.js'
import { pullLoop } from './pull-loop.js'
import { scanJetStream } from './scan.js'
import { streamRegistry } from './streams.js'
import { withTimeout } from './timeouts.js'

async function jetStreamClients(nc: NatsConnection, opts: ResolvedNatsOptions) {
  try {
    // The manager checks that JetStream is enabled for the account: fail here, not at first publish.
    const jsm = await jetstreamManager(nc, { timeout: opts.timeout })
    return { jsm, js: jetstream(nc, { timeout: opts.timeout }) }
  } catch (error) {
    await nc.close().catch(() => undefined)
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `JetStream is not available on ${opts.servers.join(', ')} (${errorText(error)}): start nats-server with -js, or leave ?jetstream=true out for core NATS`,
      { cause: error },
    )
  }
}

export async function jetStreamTransport(
  nc: NatsConnection,
  opts: ResolvedNatsOptions,
  logger: LoggerLike,
): Promise<Transport> {
  const { jsm, js } = await jetStreamClients(nc, opts)
  const watch = watchConnection(nc, logger)
  const pubAcks = pubAckInbox(nc)
  const streams = streamRegistry(jsm, opts, logger)
  const subscriptions = new Set<TransportSubscription>()
  let closed = false

  function msgId(message: TransportMessage, call: string, index: number): string {
    const id = message.headers['ce-id']
    if (opts.brokerDedupe && id !== undefined) return id
    // Unique to this publish call: de-duplicates only our own retry of it.
    return `${call}.${index}`
  }

  /**
   * Messages until JetStream acknowledges each, all in flight at once, in order on one
   * connection (a batch costs about one round trip). nats.js drops what was buffered while
   * disconnected (each reconnect attempt empties its outbound buffer) and what was on the wire
   * when the server died: after any disconnect or reconnect, what was not acknowledged yet is
   * sent again under the same Nats-Msg-Id, so JetStream stores it once either way (within its
   * duplicate window). A resend can land after later messages of the same batch. Resolves with
   * each message's error, or undefined when it was stored.
   */
  async function publishAll(messages: TransportMessage[], call: string, deadline: number): Promise<unknown[]> {
    const errors: unknown[] = new Array(messages.length).fill(undefined)
    let waiting = messages.map((_, i) => i)
    // 503: no stream holds the subject any more (deleted behind our back): re-created once per message.
    const recreated = new Set<number>()
    while (waiting.length > 0) {
      await watch.whenConnected(deadline, `publish to ${(messages[waiting[0] as number] as TransportMessage).topic}`)
      const change = watch.nextChange()
      const stored = new Set<number>()
      const failed = new Map<number, unknown>()
      const timeout = Math.max(1, deadline - Date.now())
      const group = pubAcks.publish(
        waiting.map((i) => {
          const message = messages[i] as TransportMessage
          return {
            subject: message.topic,
            data: message.value,
            headers: toNatsHeaders(message, msgId(message, call, i)),
          }
        }),
        timeout,
      )
      const acks = group.results.map((acked, k) => {
        const i = waiting[k] as number
        return acked.then(
          () => void stored.add(i),
          (error: unknown) => void failed.set(i, error),
        )
      })
      const outcome = await Promise.race([
        Promise.all(acks).then(() => 'settled' as const),
        change.promise.then(() => 'again' as const),
      ])
      change.cancel()
      // What is still unanswered is sent again below, under new reply subjects.
      group.cancel()
      const again: number[] = []
      const gone: number[] = []
      for (const i of waiting) {
        if (stored.has(i)) continue
        const error = failed.get(i)
        if (error === undefined) {
          // Still unanswered when the connection changed: the resend answers for it.
          if (outcome === 'again') again.push(i)
        } else if (isNoResponders(error) && !recreated.has(i)) {
          recreated.add(i)
          gone.push(i)
        } else {
          errors[i] = error
        }
      }
      if (gone.length > 0) {
        const topics = new Set(gone.map((i) => (messages[i] as TransportMessage).topic))
        for (const topic of topics) {
          streams.forget(topic)
          try {
            await streams.ensure(topic)
          } catch (error) {
            for (const i of gone) if ((messages[i] as TransportMessage).topic === topic) errors[i] = error
          }
        }
      }
      waiting = [...again, ...gone.filter((i) => errors[i] === undefined)].sort((a, b) => a - b)
    }
    return errors
  }

  async function publish(messages: TransportMessage[]): Promise<void> {
    if (closed) throw closedError()
    const topics = [...new Set(messages.map((m) => m.topic))]
    for (const topic of topics) checkSubjectForPublish(topic)
    await Promise.all(topics.map((topic) => streams.ensure(topic))).catch((error: unknown) => {
      throw publishError(error, topics.join(', '), opts.timeout)
    })
    const errors = await publishAll(messages, randomUUID(), Date.now() + opts.timeout)
    const failed = errors.findIndex((e) => e !== undefined)
    if (failed >= 0) throw publishError(errors[failed], (messages[failed] as TransportMessage).topic, opts.timeout)
  }

  async function subscribe(
    topic: string,
    options: TransportSubscribeOptions,
    deliver: DeliveryHandler,
  ): Promise<TransportSubscription> {
    if (closed) throw closedError()
    checkSubject(topic)
    const stream = await streams.ensure(topic)
    const spec: ConsumerSpec = {
      stream: stream.name,
      topic,
      durable: options.group === undefined ? undefined : consumerNameFor(options.group, topic, stream.ownTopic),
      from: options.from,
    }
    const { info } = await ensureConsumer(jsm, spec, opts, undefined)
    const window = Math.max(2, options.maxInFlight * 2)
    const inner = pullLoop({
      js,
      jsm,
      streams,
      opts,
      logger,
      spec,
      stream,
      info,
      window,
      deliver,
      connected: () => watch.state() === 'connected',
    })
    const subscription: TransportSubscription = {
      async close() {
        await inner.close()
        subscriptions.delete(subscription)
        // Acks are fire-and-forget: make sure they left before the caller moves on.
        if (!nc.isClosed()) await withTimeout(nc.flush(), opts.timeout, 'flushing acks').catch(() => undefined)
      },
    }
    subscriptions.add(subscription)
    return subscription
  }

  return {
    system: 'nats',
    capabilities: { durable: true, replay: true, ordering: 'topic', atLeastOnce: true },
    events: watch.events,
    state: watch.state,
    publish,
    subscribe,
    scan: (topic, { signal }) => scanJetStream({ js, jsm, subject: topic, signal }),
    async close() {
      if (closed) return
      closed = true
      // Bounded: the broker already gave handlers closeTimeout; a handler still running loses
      // its ack with the connection and JetStream redelivers its message.
      const closing = Promise.all([...subscriptions].map((s) => s.close()))
      await withTimeout(closing, opts.timeout, 'closing NATS subscriptions').catch((error: unknown) => {
        logger.warn({ err: errorText(error) }, 'nats: closing without waiting for handlers still running')
      })
      watch.closing()
      await drain(nc, opts.timeout, logger)
    },
  }
}
