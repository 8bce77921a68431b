/**
 * The outbox: messages committed with a transition are published by the engine that committed them
 * (at once) or by any engine's poller (after a crash or a failed publish), then removed in batches.
 * Consumers de-duplicate on the message id: a message may be published more than once, never lost.
 */
import { type Context, context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { isInternalTopic } from '../child-messages.js'
import type { OutboxRecord } from '../store.js'
import type { EngineContext } from './context.js'
import { hasHeader, headerGetter } from './trace-context.js'

export interface Outbox {
  /** Publishes in order; stops at the first failure (the rest wait for the poller). */
  publish(messages: readonly OutboxRecord[]): Promise<void>
  /** Claims the rows ready to publish (left by a crash, a failed publish or a non-worker) and publishes them. */
  poll(): Promise<void>
  /** Removes the rows published so far from the store. */
  flushAcks(): void
}

/**
 * `internal` carries out the engine's own rows (a child's start or end, a cancel) instead of
 * publishing them; they share the outbox's durability and order.
 */
export function createOutbox(ctx: EngineContext, internal: (message: OutboxRecord) => Promise<void>): Outbox {
  const { store, clock, logger, events, broker, opts } = ctx
  const pendingAcks: string[] = []

  const publishOutbox = async (messages: readonly OutboxRecord[]) => {
    for (const message of messages) {
      try {
        if (isInternalTopic(message.topic)) {
          try {
            await internal(message)
          } catch (error) {
            // Kept for the poller; the rest go on (their order matters per instance, not across).
            ctx.reportError(error, `workflow: could not carry out ${message.topic} (${message.id}); will retry`)
            continue
          }
          ack(message.id)
          continue
        }
        if (!broker) return // validation refuses emitting machines without one: nothing to publish to
        const publishOptions: { id: string; key?: string; headers?: Record<string, string> } = { id: message.id }
        if (message.key !== undefined && message.key !== null) publishOptions.key = message.key
        // Published in the message's own trace (or none: not the context of whoever committed or
        // polled it). The broker writes that trace into the message again (@backplane/messaging:
        // its producer span's traceparent), so the stored trace headers are not passed on twice.
        let parent: Context = ROOT_CONTEXT
        if (message.headers) {
          const headers = { ...message.headers }
          // Only a trace the registered propagator reads is taken over; without one the headers pass as they are.
          const extracted = hasHeader(headers, 'traceparent')
            ? propagation.extract(ROOT_CONTEXT, headers, headerGetter)
            : undefined
          if (extracted && trace.getSpanContext(extracted)) {
            parent = extracted
            for (const name of Object.keys(headers)) {
              const lower = name.toLowerCase()
              if (lower === 'traceparent' || lower === 'tracestate') delete headers[name]
            }
            if (Object.keys(headers).length > 0) publishOptions.headers = headers
          } else publishOptions.headers = headers
        }
        await context.with(parent, () => broker.publish(message.topic, message.data, publishOptions))
        ack(message.id)
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error))
        logger.warn(
          { id: message.id, topic: message.topic, err: err.message },
          'workflow outbox publish failed; will retry',
        )
        events.emit('outboxFailed', { id: message.id, topic: message.topic, error: err })
        return // keep order: the rest of this batch waits for the poller
      }
    }
  }

  /** Removed in one batch once this turn of the event loop is over. */
  const ack = (id: string) => {
    pendingAcks.push(id)
    if (pendingAcks.length === 1) setImmediate(flushAcks)
  }

  const flushAcks = () => {
    const ids = pendingAcks.splice(0)
    if (ids.length === 0) return
    ctx
      .track(store.ackOutbox(ids))
      .catch((error) =>
        ctx.reportError(error, 'workflow: could not remove published outbox rows (they will be published again)'),
      )
  }

  const pollOutbox = async () => {
    for (;;) {
      const now = clock.now()
      const rows = await store.claimOutbox({ now, limit: 500, holdUntil: now + opts.leaseTimeout })
      if (rows.length === 0) return
      await publishOutbox(rows)
      if (rows.length < 500) return
    }
  }

  return { publish: publishOutbox, poll: pollOutbox, flushAcks }
}
