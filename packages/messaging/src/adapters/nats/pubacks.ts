import { JetStreamApiError, JetStreamError } from '@nats-io/jetstream'
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  NoRespondersError,
  type Subscription,
  TimeoutError,
} from '@nats-io/transport-node'

/** One message to publish to JetStream. */
export interface JetStreamPublish {
  subject: string
  data: Uint8Array
  /** With its Nats-Msg-Id (js.publish's `msgID`), if it has one. */
  headers: MsgHdrs
}

export interface PubAckGroup {
  /** One promise per message, in order: resolves when JetStream stored it, rejects with why not. */
  results: Promise<void>[]
  /** Stops waiting for the answers not in yet (their promises then never settle). */
  cancel(): void
}

interface Waiter {
  resolve: () => void
  reject: (error: Error) => void
}

/**
 * What JetStream answered, read as js.publish reads it: "no responders" when no stream holds the
 * subject (a 503 status and no body, which the caller handles by re-creating the stream), a
 * JetStream API error, or a PubAck. The errors are nats.js's own, as js.publish would throw them.
 */
function pubAckError(msg: Msg): Error | undefined {
  if (msg.data.length === 0 && msg.headers?.code === 503) return new NoRespondersError(msg.subject)
  let ack: { stream?: string; error?: { code: number; err_code?: number; description?: string } }
  try {
    ack = msg.json()
  } catch (error) {
    return new JetStreamError('invalid ack response', { cause: error })
  }
  if (ack.error) {
    return new JetStreamApiError({
      code: ack.error.code,
      err_code: ack.error.err_code ?? 0,
      description: ack.error.description || `JetStream error ${ack.error.code}`,
    })
  }
  if (!ack.stream) return new JetStreamError('invalid ack response')
  return undefined
}

/**
 * JetStream publishes that get their PubAcks on one subscription of the connection's own.
 * js.publish (nats.js v3, as v2) makes each message a request: a reply token in the request mux,
 * a timer, a chain of promises and an Error made to cancel even a request that succeeded, which
 * cost the client about twice what publishing the message itself does. Here each message goes
 * out with a reply subject under one wildcard inbox, its answer is matched by the last token, and
 * a group of messages shares one timer. nats.js re-subscribes the inbox after a reconnect, but
 * empties its outbound buffer at every reconnect attempt: what is unanswered then is the
 * caller's to send again (jetstream.ts does).
 */
export function pubAckInbox(nc: NatsConnection) {
  const waiting = new Map<string, Waiter>()
  let subscription: Subscription | undefined
  let prefix = ''
  let next = 0

  function answered(error: Error | null, msg: Msg): void {
    if (error) {
      // The inbox subscription failed (a permissions violation, say): nothing will be answered.
      subscription = undefined
      for (const waiter of waiting.values()) waiter.reject(error)
      waiting.clear()
      return
    }
    const token = msg.subject.slice(prefix.length + 1)
    const waiter = waiting.get(token)
    // Answered after its group timed out or was sent again: already settled, or never will be.
    if (!waiter) return
    waiting.delete(token)
    const failure = pubAckError(msg)
    if (failure) waiter.reject(failure)
    else waiter.resolve()
  }

  function inbox(): string {
    if (!subscription || subscription.isClosed()) {
      prefix = createInbox()
      subscription = nc.subscribe(`${prefix}.*`, { callback: answered })
    }
    return prefix
  }

  /** Publishes every message now; JetStream's answers settle `results`, or a TIMEOUT after `timeoutMs`. */
  function publish(messages: JetStreamPublish[], timeoutMs: number): PubAckGroup {
    const tokens: string[] = []
    const results = messages.map((message) => {
      const token = String(++next)
      tokens.push(token)
      const acked = new Promise<void>((resolve, reject) => waiting.set(token, { resolve, reject }))
      try {
        nc.publish(message.subject, message.data, { headers: message.headers, reply: `${inbox()}.${token}` })
      } catch (error) {
        // Closed connection, say: js.publish would have rejected too.
        ;(waiting.get(token) as Waiter).reject(error as Error)
        waiting.delete(token)
      }
      return acked
    })
    const forget = (error?: Error) => {
      for (const token of tokens) {
        const waiter = waiting.get(token)
        if (!waiter) continue
        waiting.delete(token)
        if (error) waiter.reject(error)
      }
    }
    const timer = setTimeout(() => forget(new TimeoutError()), timeoutMs)
    void Promise.allSettled(results).then(() => clearTimeout(timer))
    return {
      results,
      cancel() {
        clearTimeout(timer)
        forget()
      },
    }
  }

  return { publish }
}

export type PubAckInbox = ReturnType<typeof pubAckInbox>
