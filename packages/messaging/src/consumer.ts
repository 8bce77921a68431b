import { backoffDelay } from '@backplane/internal'
import { context } from '@opentelemetry/api'
import type { z } from 'zod'
import type { DedupeStore } from './dedupe.js'
import { decodeBody, dedupeKey, type Message, messageId, PUBLISHED, publishedAt } from './envelope.js'
import { NonRetryableError, RetryAfterError } from './errors.js'
import type { ResolvedSubscribeOptions } from './options.js'
import { RunningDeliveries } from './running.js'
import { endSpan, extractContext, recordDuration, startProcessSpan, tracerRegistered } from './telemetry.js'
import { schemaIssues } from './topic.js'
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

/**
 * Waits `ms`; false when `signal` aborted first. Not the shared `sleep`: that one unrefs its
 * timer, and a message waiting for its retry must keep the process alive (a memory broker holds
 * nothing else open).
 */
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

/**
 * The handler's view of a delivery; `publishedAt` is parsed only if read. The fields are
 * `declare`d and set in the constructor: declared class fields would each be defined as
 * undefined first and then set again, for every message.
 */
class DeliveredMessage<T> implements Message<T> {
  declare readonly id: string
  declare readonly topic: string
  declare readonly key: string | undefined
  declare readonly data: T
  declare readonly headers: Readonly<Record<string, string>>
  declare readonly attempt: number
  declare readonly raw: Uint8Array

  constructor(
    id: string,
    topic: string,
    key: string | undefined,
    data: T,
    headers: Readonly<Record<string, string>>,
    attempt: number,
    raw: Uint8Array,
  ) {
    this.id = id
    this.topic = topic
    this.key = key
    this.data = data
    this.headers = headers
    this.attempt = attempt
    this.raw = raw
  }

  get publishedAt(): Date {
    return publishedAt({ topic: this.topic, key: this.key, headers: this.headers, value: this.raw })
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    ((typeof value === 'object' && value !== null) || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
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
    const at = new Date().toISOString()
    const headers: Record<string, string> = {
      ...delivery.headers,
      [DLQ.reason]: reason,
      [DLQ.error]: text.slice(0, 1024),
      [DLQ.attempts]: String(attempts),
      [DLQ.topic]: ctx.topic,
      [DLQ.at]: at,
      // The dead letter's own publish time (its `publishedAt`); `ce-time` stays the event's.
      [PUBLISHED]: at,
    }
    if (ctx.group !== undefined) headers[DLQ.group] = ctx.group
    const message: TransportMessage = { topic: deadLetterTopic, key: delivery.key, headers, value: delivery.value }
    await transport.publish([message])
    ctx.logger.warn({ topic: ctx.topic, group: ctx.group, id, reason, deadLetterTopic }, 'message dead-lettered')
  }

  const running = new RunningDeliveries(options.heartbeat, (delivery) => {
    delivery.heartbeat().catch((error: unknown) => ctx.logger.warn({ err: errorText(error) }, 'heartbeat failed'))
  })

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

  /**
   * Processing failed outside the handler (dead-lettering, the dedupe store, the ack): leave the
   * message with the broker rather than lose it. Each step below ends here on its own failures,
   * so the promise a delivery returns rejects only when even the release fails: no `.catch`
   * (another promise and turn of the microtask queue) around every delivery.
   */
  function unprocessed(delivery: TransportDelivery, error: unknown): Promise<void> {
    ctx.logger.error(
      { topic: ctx.topic, err: (error as Error)?.message },
      'message processing failed; released for redelivery',
    )
    return delivery.release()
  }

  async function deadLettered(
    delivery: TransportDelivery,
    reason: DeadLetterReason,
    error: unknown,
    attempt: number,
  ): Promise<void> {
    try {
      await deadLetter(delivery, reason, error, attempt)
      await delivery.ack()
    } catch (failure) {
      await unprocessed(delivery, failure)
    }
  }

  /**
   * Decoding and the schema check run at once; what follows is one async function per delivery
   * (attempts), not a chain of them: each level costs a promise and a heap frame per message.
   * Resolves once the delivery is acked or released; rejects only if releasing it failed.
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
          const issues = schemaIssues(checked.error).join('; ')
          const error = new Error(`data does not match the topic schema: ${issues}`)
          return deadLettered(delivery, 'schema', error, firstAttempt)
        }
        data = checked.data
      }
      if (ctx.dedupe) return deduplicated(delivery, data as T, firstAttempt, ctx.dedupe)
      return attempts(delivery, data as T, firstAttempt, undefined)
    } catch (error) {
      return unprocessed(delivery, error)
    }
  }

  async function deduplicated(
    delivery: TransportDelivery,
    data: T,
    firstAttempt: number,
    dedupe: NonNullable<ConsumerContext<T>['dedupe']>,
  ): Promise<void> {
    const key = dedupeKey(delivery)
    try {
      if (inProgress.has(key) || (await dedupe.store.has(key))) {
        ctx.onDuplicate(messageId(delivery))
        return await delivery.ack()
      }
    } catch (error) {
      return unprocessed(delivery, error)
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
    try {
      for (let attempt = firstAttempt; ; attempt++) {
        if (ctx.signal.aborted) return await delivery.release()
        const message = new DeliveredMessage(
          id,
          ctx.topic,
          delivery.key,
          data,
          delivery.headers,
          attempt,
          delivery.value,
        )
        const started = performance.now()
        const entry = running.add(delivery, started)
        let failure: unknown
        let failed = false
        try {
          if (delivery.headers.traceparent === undefined && !tracerRegistered()) {
            // Nothing to trace: no SDK records spans and no trace came with the message.
            try {
              const result = handler(message)
              // A handler that returned no promise has finished: awaiting its value would cost
              // a promise and a turn of the microtask queue per message for nothing.
              if (isThenable(result)) await result
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
          running.remove(entry)
        }
        if (!failed) {
          if (key !== undefined && ctx.dedupe) await ctx.dedupe.store.add(key, ctx.dedupe.ttl)
          // Awaited rather than returned: an async function returning a promise waits for it
          // through an extra job and two more promise reactions.
          return await delivery.ack()
        }
        if (NonRetryableError.is(failure)) return await deadLettered(delivery, 'non-retryable', failure, attempt)
        if (attempt >= options.retry.maxAttempts) return await deadLettered(delivery, 'max-attempts', failure, attempt)
        ctx.logger.debug({ topic: ctx.topic, id, attempt, err: errorText(failure) }, 'handler failed; retrying')
        const delay = RetryAfterError.is(failure) ? failure.delayMs : backoffDelay(options.retry, attempt)
        if (!(await sleep(delay, ctx.signal))) return await delivery.release()
      }
    } catch (error) {
      // The dedupe store, the ack or a release failed (the handler's own errors are handled above).
      return unprocessed(delivery, error)
    }
  }

  return process
}
