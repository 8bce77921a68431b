import { context } from '@opentelemetry/api'
import type { z } from 'zod'
import { backoffDelay } from './backoff.js'
import type { DedupeStore } from './dedupe.js'
import { decodeBody, dedupeKey, type Message, messageId, publishedAt } from './envelope.js'
import { NonRetryableError } from './errors.js'
import type { ResolvedSubscribeOptions } from './options.js'
import { endSpan, extractContext, recordDuration, startProcessSpan } from './telemetry.js'
import type { LoggerLike, Transport, TransportDelivery, TransportMessage } from './transport.js'

export type Handler<T> = (message: Message<T>) => unknown

/** Headers a dead-lettered message carries, besides all of its own. */
export const DLQ = {
  reason: 'backplane-dlq-reason',
  error: 'backplane-dlq-error',
  attempts: 'backplane-dlq-attempts',
  topic: 'backplane-dlq-topic',
  group: 'backplane-dlq-group',
  at: 'backplane-dlq-at',
} as const

export type DeadLetterReason = 'max-attempts' | 'non-retryable' | 'schema' | 'malformed'

export interface DeadLetterEvent {
  topic: string
  group: string | undefined
  id: string
  reason: DeadLetterReason
  error: string
  deadLetterTopic: string | false
}

export interface ConsumerContext<T> {
  topic: string
  group: string | undefined
  transport: Transport
  options: ResolvedSubscribeOptions
  schema: z.ZodType<T> | undefined
  dedupe: { store: DedupeStore; ttl: number } | undefined
  logger: LoggerLike
  /** Aborted when the subscription closes: retry waits end and the message is released. */
  signal: AbortSignal
  onDeadLetter: (event: DeadLetterEvent) => void
  onDuplicate: (id: string) => void
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

/**
 * The life of one delivery: decode, check the schema, skip duplicates, run the handler with
 * retries and backoff, dead-letter what cannot succeed, then ack. A delivery caught by shutdown
 * in the middle of its retries is released for redelivery rather than acked: nothing unhandled
 * is lost.
 */
export function createDeliveryProcessor<T>(ctx: ConsumerContext<T>, handler: Handler<T>) {
  const { options, transport } = ctx
  const deadLetterTopic = options.deadLetter === undefined ? `${ctx.topic}.dlq` : options.deadLetter
  const inProgress = new Set<string>()

  async function deadLetter(
    delivery: TransportDelivery,
    reason: DeadLetterReason,
    error: unknown,
    attempts: number,
  ): Promise<void> {
    const id = messageId(delivery)
    const text = errorText(error)
    ctx.onDeadLetter({ topic: ctx.topic, group: ctx.group, id, reason, error: text, deadLetterTopic })
    if (deadLetterTopic === false) {
      ctx.logger.error(
        { topic: ctx.topic, group: ctx.group, id, reason, err: text },
        'message dropped: no dead-letter topic',
      )
      return
    }
    const headers: Record<string, string> = {
      ...delivery.headers,
      [DLQ.reason]: reason,
      [DLQ.error]: text.slice(0, 1024),
      [DLQ.attempts]: String(attempts),
      [DLQ.topic]: ctx.topic,
      [DLQ.at]: new Date().toISOString(),
    }
    if (ctx.group !== undefined) headers[DLQ.group] = ctx.group
    const message: TransportMessage = { topic: deadLetterTopic, key: delivery.key, headers, value: delivery.value }
    await transport.publish([message])
    ctx.logger.warn({ topic: ctx.topic, group: ctx.group, id, reason, deadLetterTopic }, 'message dead-lettered')
  }

  async function runHandler(message: Message<T>, delivery: TransportDelivery): Promise<void> {
    const attributes = { system: transport.system, destination: ctx.topic, group: ctx.group, messageId: message.id }
    const { span, context: spanContext } = startProcessSpan(extractContext(delivery.headers), attributes)
    const started = performance.now()
    // A slow handler must not look dead to the broker (Kafka rebalance, JetStream redelivery).
    const heartbeat = setInterval(() => {
      delivery.heartbeat().catch((error: unknown) => ctx.logger.warn({ err: errorText(error) }, 'heartbeat failed'))
    }, options.heartbeatMs)
    heartbeat.unref()
    let failure: unknown
    try {
      await context.with(spanContext, () => handler(message))
    } catch (error) {
      failure = error ?? new Error('handler threw a nullish value')
      throw failure
    } finally {
      clearInterval(heartbeat)
      endSpan(span, failure)
      recordDuration('process', (performance.now() - started) / 1000, attributes, failure)
    }
  }

  async function process(delivery: TransportDelivery): Promise<void> {
    const firstAttempt = delivery.redeliveries + 1
    let data: unknown
    try {
      data = options.raw ? delivery.value : decodeBody(delivery)
    } catch (error) {
      await deadLetter(delivery, 'malformed', error, firstAttempt)
      return delivery.ack()
    }
    if (ctx.schema) {
      const checked = ctx.schema.safeParse(data)
      if (!checked.success) {
        const issues = checked.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ')
        await deadLetter(delivery, 'schema', new Error(`data does not match the topic schema: ${issues}`), firstAttempt)
        return delivery.ack()
      }
      data = checked.data
    }
    const key = ctx.dedupe ? dedupeKey(delivery) : undefined
    if (key !== undefined && ctx.dedupe) {
      if (inProgress.has(key) || (await ctx.dedupe.store.has(key))) {
        ctx.onDuplicate(messageId(delivery))
        return delivery.ack()
      }
      inProgress.add(key)
    }
    try {
      await attempts(delivery, data as T, firstAttempt, key)
    } finally {
      if (key !== undefined) inProgress.delete(key)
    }
  }

  async function attempts(delivery: TransportDelivery, data: T, firstAttempt: number, key: string | undefined) {
    const base = {
      id: messageId(delivery),
      topic: ctx.topic,
      key: delivery.key,
      data,
      headers: delivery.headers,
      publishedAt: publishedAt(delivery),
      raw: delivery.value,
    }
    for (let attempt = firstAttempt; ; attempt++) {
      if (ctx.signal.aborted) return delivery.release()
      try {
        await runHandler({ ...base, attempt }, delivery)
      } catch (error) {
        if (NonRetryableError.is(error)) {
          await deadLetter(delivery, 'non-retryable', error, attempt)
          return delivery.ack()
        }
        if (attempt >= options.maxAttempts) {
          await deadLetter(delivery, 'max-attempts', error, attempt)
          return delivery.ack()
        }
        ctx.logger.debug({ topic: ctx.topic, id: base.id, attempt, err: errorText(error) }, 'handler failed; retrying')
        if (!(await sleep(backoffDelay(options.backoff, attempt), ctx.signal))) return delivery.release()
        continue
      }
      if (key !== undefined && ctx.dedupe) await ctx.dedupe.store.add(key, ctx.dedupe.ttl)
      return delivery.ack()
    }
  }

  return process
}
