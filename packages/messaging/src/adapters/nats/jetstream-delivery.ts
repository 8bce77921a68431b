import type { LoggerLike, TransportDelivery } from '@backplane/messaging'
import type { JsMsg } from '@nats-io/jetstream'
import { errorText } from './errors.js'
import { fromNatsHeaders } from './headers.js'

// Acks are fire-and-forget publishes; a closed connection must not turn one into a failure of
// the handler: JetStream redelivers what it did not hear about.
export function sendAck(msg: JsMsg, what: 'ack' | 'nak' | 'working', logger: LoggerLike): void {
  try {
    if (what === 'ack') msg.ack()
    else if (what === 'nak') msg.nak()
    else msg.working()
  } catch (error) {
    logger.warn({ subject: msg.subject, err: errorText(error) }, `nats ${what} not sent; JetStream will redeliver`)
  }
}

/**
 * Acks (and naks) of one event-loop turn, sent together. nats.js writes what was queued once
 * per run of microtasks; acks of deliveries that end in separate promise chains would each cost
 * a socket write (a system call) otherwise. Each message still gets its own ack, after its
 * handler, within the same turn.
 */
export function ackBatcher(logger: LoggerLike) {
  let pending: { msg: JsMsg; what: 'ack' | 'nak' }[] = []
  let scheduled = false
  function flush(): void {
    scheduled = false
    const list = pending
    pending = []
    for (const { msg, what } of list) sendAck(msg, what, logger)
  }
  return {
    send(msg: JsMsg, what: 'ack' | 'nak'): void {
      pending.push({ msg, what })
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    /** Sends what is waiting now (before a flush round trip or a close). */
    flush,
  }
}

type AckBatcher = ReturnType<typeof ackBatcher>

/** One JetStream delivery; a class rather than closures per message. */
export class JetStreamDelivery implements TransportDelivery {
  readonly key: string | undefined
  readonly headers: Record<string, string>
  readonly value: Uint8Array
  readonly redeliveries: number
  private settled = false

  constructor(
    readonly topic: string,
    private readonly msg: JsMsg,
    private readonly logger: LoggerLike,
    private readonly acks: AckBatcher,
  ) {
    const { key, headers } = fromNatsHeaders(msg.headers)
    this.key = key
    this.headers = headers
    this.value = msg.data
    this.redeliveries = Math.max(0, msg.info.deliveryCount - 1)
  }

  private settle(what: 'ack' | 'nak'): Promise<void> {
    if (!this.settled) {
      this.settled = true
      this.acks.send(this.msg, what)
    }
    return Promise.resolve()
  }

  ack(): Promise<void> {
    return this.settle('ack')
  }

  release(): Promise<void> {
    return this.settle('nak')
  }

  heartbeat(): Promise<void> {
    if (!this.settled) sendAck(this.msg, 'working', this.logger)
    return Promise.resolve()
  }
}
