import { context } from '@opentelemetry/api'
import type { z } from 'zod'
import { backoffDelay } from './backoff.js'
import type { DedupeStore } from './dedupe.js'
import { decodeBody, dedupeKey, type Message, messageId, publishedAt } from './envelope.js'
import { NonRetryableError, RetryAfterError } from './errors.js'
import type { ResolvedSubscribeOptions } from './options.js'
import { endSpan, extractContext, recordDuration, startProcessSpan, tracerRegistered } from './telemetry.js'
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

/** The handler's view of a delivery; `publishedAt` is parsed only if read. */
class DeliveredMessage<T> implements Message<T> {
  constructor(
    readonly id: string,
    readonly topic: string,
    readonly key: string | undefined,
    readonly data: T,
    readonly headers: Readonly<Record<string, string>>,
    readonly attempt: number,
    readonly raw: Uint8Array,
  ) {}

  get publishedAt(): Date {
    return publishedAt({ topic: this.topic, key: this.key, headers: this.headers, value: this.raw })
  }
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

  // One ticker per subscription, not a timer per message: it tells the broker about every
  // delivery whose handler has been running for a while (Kafka rebalance, JetStream redelivery).
  // It stops at a tick that finds nothing running, not when the last handler ends: quick
  // handlers would otherwise start and stop a timer for nearly every message.
  const running = new Map<TransportDelivery, number>()
  let ticker: NodeJS.Timeout | undefined
  function trackRunning(delivery: TransportDelivery, since: number): void {
    running.set(delivery, since)
    if (ticker) return
    ticker = setInterval(() => {
      if (running.size === 0) {
        clearInterval(ticker)
        ticker = undefined
        return
      }
      const now = performance.now()
      for (const [d, since] of running) {
        if (now - since < options.heartbeatMs) continue
        d.heartbeat().catch((error: unknown) => ctx.logger.warn({ err: errorText(error) }, 'heartbeat failed'))
      }
    }, options.heartbeatMs)
    ticker.unref()
  }
  function untrack(delivery: TransportDelivery): void {
    running.delete(delivery)
  }

  const attributes = { system: transport.system, destination: ctx.topic, group: ctx.group }

  /** The handler inside a CONSUMER span, in the context the message's trace headers carry. */
  async function runTraced(message: Message<T>, delivery: TransportDelivery, started: number): Promise<void> {
    const { span, context: spanContext } = startProcessSpan(extractContext(delivery.headers), attributes)
    if (span.isRecording()) span.setAttribute('messaging.message.id', message.id)
    let failure: unknown
    try {
      await context.with(spanContext, () => handler(message))
    } catch (error) {
      failure = error ?? new Error('handler threw a nullish value')
      throw failure
    } finally {
      endSpan(span, failure)
      recordDuration('process', (performance.now() - started) / 1000, attributes, failure)
    }
  }

  async function deadLettered(
    delivery: TransportDelivery,
    reason: DeadLetterReason,
    error: unknown,
    attempt: number,
  ): Promise<void> {
    await deadLetter(delivery, reason, error, attempt)
    return delivery.ack()
  }

  /**
   * Decoding and the schema check run at once; what follows is one async function per delivery
   * (attempts), not a chain of them: each level costs a promise and a heap frame per message.
   */
  function process(delivery: TransportDelivery): Promise<void> {
    try {
      const firstAttempt = delivery.redeliveries + 1
      let data: unknown
      try {
        data = options.raw ? delivery.value : decodeBody(delivery)
      } catch (error) {
        return deadLettered(delivery, 'malformed', error, firstAttempt)
      }
      if (ctx.schema) {
        const checked = ctx.schema.safeParse(data)
        if (!checked.success) {
          const issues = checked.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ')
          const error = new Error(`data does not match the topic schema: ${issues}`)
          return deadLettered(delivery, 'schema', error, firstAttempt)
        }
        data = checked.data
      }
      if (ctx.dedupe) return deduplicated(delivery, data as T, firstAttempt, ctx.dedupe)
      return attempts(delivery, data as T, firstAttempt, undefined)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async function deduplicated(
    delivery: TransportDelivery,
    data: T,
    firstAttempt: number,
    dedupe: NonNullable<ConsumerContext<T>['dedupe']>,
  ): Promise<void> {
    const key = dedupeKey(delivery)
    if (inProgress.has(key) || (await dedupe.store.has(key))) {
      ctx.onDuplicate(messageId(delivery))
      return delivery.ack()
    }
    inProgress.add(key)
    try {
      await attempts(delivery, data, firstAttempt, key)
    } finally {
      inProgress.delete(key)
    }
  }

  async function attempts(delivery: TransportDelivery, data: T, firstAttempt: number, key: string | undefined) {
    const id = messageId(delivery)
    for (let attempt = firstAttempt; ; attempt++) {
      if (ctx.signal.aborted) return delivery.release()
      const message = new DeliveredMessage(id, ctx.topic, delivery.key, data, delivery.headers, attempt, delivery.value)
      const started = performance.now()
      trackRunning(delivery, started)
      let failure: unknown
      let failed = false
      try {
        if (delivery.headers.traceparent === undefined && !tracerRegistered()) {
          // Nothing to trace: no SDK records spans and no trace came with the message.
          try {
            await handler(message)
          } catch (error) {
            recordDuration('process', (performance.now() - started) / 1000, attributes, error ?? 'error')
            throw error ?? new Error('handler threw a nullish value')
          }
          recordDuration('process', (performance.now() - started) / 1000, attributes)
        } else {
          await runTraced(message, delivery, started)
        }
      } catch (error) {
        failed = true
        failure = error
      } finally {
        untrack(delivery)
      }
      if (!failed) {
        if (key !== undefined && ctx.dedupe) await ctx.dedupe.store.add(key, ctx.dedupe.ttl)
        return delivery.ack()
      }
      if (NonRetryableError.is(failure)) return deadLettered(delivery, 'non-retryable', failure, attempt)
      if (attempt >= options.maxAttempts) return deadLettered(delivery, 'max-attempts', failure, attempt)
      ctx.logger.debug({ topic: ctx.topic, id, attempt, err: errorText(failure) }, 'handler failed; retrying')
      const delay = RetryAfterError.is(failure) ? failure.delayMs : backoffDelay(options.backoff, attempt)
      if (!(await sleep(delay, ctx.signal))) return delivery.release()
    }
  }

  return process
}
