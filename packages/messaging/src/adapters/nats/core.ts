import {
  type DeliveryHandler,
  type LoggerLike,
  MessagingError,
  type Transport,
  type TransportDelivery,
  type TransportMessage,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@backplane/messaging'
import type { Msg, NatsConnection } from '@nats-io/transport-node'
import { drain } from './connection.js'
import { watchConnection } from './connection-watch.js'
import { inFlightCounter, runDelivery } from './deliveries.js'
import { closedError, publishError } from './errors.js'
import { fromNatsHeaders, toNatsHeaders } from './headers.js'
import { checkSubject, checkSubjectForPublish } from './names.js'
import type { ResolvedNatsOptions } from './options.js'
import { withTimeout } from './timeouts.js'

function coreDelivery(topic: string, msg: Msg, logger: LoggerLike): TransportDelivery {
  const { key, headers } = fromNatsHeaders(msg.headers)
  return {
    topic,
    key,
    headers,
    value: msg.data,
    redeliveries: 0,
    ack: async () => {},
    release: async () => {
      // Core NATS keeps nothing: there is no one to give the message back to.
      logger.warn({ topic, id: headers['ce-id'] }, 'core NATS cannot redeliver a released message: it is dropped')
    },
    heartbeat: async () => {},
  }
}

export function coreTransport(nc: NatsConnection, opts: ResolvedNatsOptions, logger: LoggerLike): Transport {
  const watch = watchConnection(nc, logger)
  let closed = false

  async function publish(messages: TransportMessage[]): Promise<void> {
    if (closed) throw closedError()
    const topic = messages[0]?.topic ?? ''
    for (const message of messages) checkSubjectForPublish(message.topic)
    const deadline = Date.now() + opts.timeout
    // What nats.js buffers while disconnected is dropped at the next reconnect attempt: wait.
    await watch.whenConnected(deadline, `publish to ${topic}`)
    try {
      for (const message of messages) {
        nc.publish(message.topic, message.value, { headers: toNatsHeaders(message) })
      }
      // Core NATS is at most once: after the flush the server has the messages and hands them to
      // whoever subscribes at this moment. It keeps nothing for later or absent subscribers.
      await withTimeout(nc.flush(), Math.max(1, deadline - Date.now()), `publish to ${topic}`)
    } catch (error) {
      throw publishError(error, topic, opts.timeout)
    }
  }

  async function subscribe(
    topic: string,
    options: TransportSubscribeOptions,
    deliver: DeliveryHandler,
  ): Promise<TransportSubscription> {
    if (closed) throw closedError()
    checkSubject(topic)
    if (options.from === 'earliest') {
      throw new MessagingError(
        'MESSAGING_UNSUPPORTED',
        `core NATS keeps no messages, so there is no earliest to start ${topic} from: use JetStream (add ?jetstream=true to the nats:// URL) or from: 'latest'`,
      )
    }
    await watch.whenConnected(Date.now() + opts.timeout, `subscribe to ${topic}`)
    const inFlight = inFlightCounter()
    const sub = nc.subscribe(topic, {
      ...(options.group === undefined ? {} : { queue: options.group }),
      callback: (error, msg) => {
        if (error) {
          logger.error({ topic, err: error.message }, 'nats subscription error')
          return
        }
        inFlight.add()
        runDelivery(deliver, coreDelivery(topic, msg, logger), logger, () => inFlight.done())
      },
    })
    try {
      // The server knows the subscription once the flush returns: later messages reach it.
      await withTimeout(nc.flush(), opts.timeout, `subscribe to ${topic}`)
    } catch (error) {
      sub.unsubscribe()
      throw error
    }
    let closing: Promise<void> | undefined
    return {
      close() {
        closing ??= (async () => {
          if (!sub.isClosed()) sub.unsubscribe()
          await inFlight.until(() => inFlight.count === 0)
        })()
        return closing
      },
    }
  }

  return {
    system: 'nats',
    capabilities: { durable: false, replay: false, ordering: 'topic', atLeastOnce: false },
    events: watch.events,
    state: watch.state,
    publish,
    subscribe,
    async close() {
      if (closed) return
      closed = true
      watch.closing()
      await drain(nc, opts.timeout, logger)
    },
  }
}
