import { performance } from 'node:perf_hooks'
import { backoffDelay } from '@backplane/internal'
import { context } from '@opentelemetry/api'
import type { z } from 'zod'
import { REPLAY } from './dead-letters-headers.js'
import type { DedupeStore } from './dedupe.js'
import { decodeBody, dedupeKey, type Message, messageId, PUBLISHED, publishedAt } from './envelope.js'
import { NonRetryableError, RetryAfterError } from './errors.js'
import type { ResolvedSubscribeOptions } from './options.js'
import { RunningDeliveries, type RunningEntry } from './running.js'
import { endSpan, extractContext, recordDuration, startProcessSpan, tracerRegistered } from './telemetry.js'
import { schemaIssues } from './topic.js'
import type { LoggerLike, Transport, TransportDelivery, TransportMessage } from './transport.js'

export type Handler<T> = (message: Message<T>) => unknown

/**
 * The direct way between the core and memory://, behind the `Transport` interface: a deliver
 * handler carrying `[DIRECT]` takes a delivery without a promise; a delivery carrying `[ENDED]`
 * settles at once (`ack` and `release` take effect before they return, never fail) and hears
 * by `[ENDED](failed)` that the core is done with it. No promise or closure per message.
 * `Symbol.for`: the memory adapter is built apart and finds the same symbols by name.
 */
export const DIRECT = Symbol.for('@backplane/messaging/deliver-direct')
export const ENDED = Symbol.for('@backplane/messaging/delivery-ended')

export interface DirectDelivery extends TransportDelivery {
  /** The core is done: acked or released (`failed`: even the release failed). */
  [ENDED](failed: boolean): void
}

const isDirect = (delivery: TransportDelivery): delivery is DirectDelivery =>
  (delivery as Partial<DirectDelivery>)[ENDED] !== undefined

// What `process` returns for a direct delivery acked at once.
const acked: Promise<void> = Promise.resolve()

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
  /** A replayed dead letter meant for another group (`backplane-replay-group`) was acked unhandled. */
  onReplaySkipped: (id: string, replayGroup: string) => void
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
  // The signal's `aborted` getter checks its receiver on every read: once per message adds up.
  let closing = ctx.signal.aborted
  ctx.signal.addEventListener('abort', () => (closing = true), { once: true })

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
    // A replay that failed again: readers of the dead-letter topic must not skip it as another group's.
    if (headers[REPLAY.group] !== undefined) delete headers[REPLAY.group]
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
      recordDuration('process', started, attributes, failure)
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
  function processNow(delivery: TransportDelivery): Promise<void> | undefined {
    try {
      // A replay goes to the group that failed the message only: the others handled it already.
      const replayGroup = delivery.headers[REPLAY.group]
      if (replayGroup !== undefined && replayGroup !== ctx.group) {
        ctx.onReplaySkipped(messageId(delivery), replayGroup)
        return delivery.ack()
      }
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
      return attempt(delivery, data as T, firstAttempt, undefined)
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
      await attempt(delivery, data, firstAttempt, key)
    } finally {
      inProgress.delete(key)
    }
  }

  /** The message the handler gets for attempt `n` of `delivery`. */
  function messageOf(delivery: TransportDelivery, data: T, n: number): DeliveredMessage<T> {
    return new DeliveredMessage(messageId(delivery), ctx.topic, delivery.key, data, delivery.headers, n, delivery.value)
  }

  /**
   * One attempt, run without an async function when nothing needs one: no trace to continue or
   * record, a handler that returns no promise and succeeds, no de-duplication. An async function
   * would cost a promise, a heap frame for its locals and a turn of the microtask queue per
   * message, a good part of what the core adds to a memory delivery. A promise from the handler
   * goes on in `awaitHandler`, a failure in `settle`, a trace (or a closing subscription) in
   * `tracedAttempt`. Resolves once the delivery is acked or released; returns undefined instead
   * when it acked a direct delivery (one that settles at once) already.
   */
  function attempt(
    delivery: TransportDelivery,
    data: T,
    n: number,
    key: string | undefined,
  ): Promise<void> | undefined {
    if (closing || delivery.headers.traceparent !== undefined || tracerRegistered()) {
      return tracedAttempt(delivery, data, n, key)
    }
    const message = messageOf(delivery, data, n)
    const started = performance.now()
    let result: unknown
    try {
      result = handler(message)
    } catch (error) {
      recordDuration('process', started, attributes, error ?? 'error')
      return settle(delivery, data, n, key, error ?? new Error('handler threw a nullish value'))
    }
    // Only a handler still running can be seen by the heartbeat ticker: one that returned at
    // once never ran while the ticker could tick, so it needs no entry.
    if (isThenable(result)) return awaitHandler(delivery, data, n, key, running.add(delivery, started), started, result)
    recordDuration('process', started, attributes)
    if (key !== undefined) return settle(delivery, data, n, key, undefined)
    try {
      if (isDirect(delivery)) {
        void delivery.ack()
        return undefined
      }
      // The ack's own promise when it succeeds: no async function to wrap it.
      return delivery.ack().then(undefined, (error: unknown) => unprocessed(delivery, error))
    } catch (error) {
      return unprocessed(delivery, error)
    }
  }

  /** The rest of an attempt whose handler returned a promise. */
  async function awaitHandler(
    delivery: TransportDelivery,
    data: T,
    n: number,
    key: string | undefined,
    entry: RunningEntry,
    started: number,
    result: PromiseLike<unknown>,
  ): Promise<void> {
    let failure: unknown
    try {
      await result
      recordDuration('process', started, attributes)
    } catch (error) {
      recordDuration('process', started, attributes, error ?? 'error')
      failure = error ?? new Error('handler threw a nullish value')
    } finally {
      running.remove(entry)
    }
    if (failure === undefined && key === undefined) {
      try {
        // Awaited rather than returned: an async function returning a promise waits for it
        // through an extra job and two more promise reactions.
        return await delivery.ack()
      } catch (error) {
        return unprocessed(delivery, error)
      }
    }
    return await settle(delivery, data, n, key, failure)
  }

  /** An attempt in a CONSUMER span; none at all once the subscription is closing (released). */
  async function tracedAttempt(delivery: TransportDelivery, data: T, n: number, key: string | undefined) {
    let failure: unknown
    try {
      if (closing) return await delivery.release()
      const message = messageOf(delivery, data, n)
      const started = performance.now()
      const entry = running.add(delivery, started)
      try {
        await runTraced(message, delivery, started)
      } catch (error) {
        failure = error
      } finally {
        running.remove(entry)
      }
    } catch (error) {
      return unprocessed(delivery, error)
    }
    return await settle(delivery, data, n, key, failure)
  }

  /**
   * After attempt `n` (`failure` undefined when it succeeded): ack, remembering the message for
   * de-duplication; dead-letter what cannot succeed; else wait the backoff and try again. A
   * failure of the dedupe store, the ack or a release ends in `unprocessed`.
   */
  async function settle(
    delivery: TransportDelivery,
    data: T,
    n: number,
    key: string | undefined,
    failure: unknown,
  ): Promise<void> {
    try {
      if (failure === undefined) {
        if (key !== undefined && ctx.dedupe) await ctx.dedupe.store.add(key, ctx.dedupe.ttl)
        return await delivery.ack()
      }
      if (NonRetryableError.is(failure)) {
        // Another copy's error, or another error branded so, may carry no reason.
        const reason = (failure as { reason?: unknown }).reason === 'max-attempts' ? 'max-attempts' : 'non-retryable'
        return await deadLettered(delivery, reason, failure, n)
      }
      if (n >= options.retry.maxAttempts) return await deadLettered(delivery, 'max-attempts', failure, n)
      const id = messageId(delivery)
      ctx.logger.debug({ topic: ctx.topic, id, attempt: n, err: errorText(failure) }, 'handler failed; retrying')
      const delay = RetryAfterError.is(failure) ? failure.delayMs : backoffDelay(options.retry, n)
      if (!(await sleep(delay, ctx.signal))) return await delivery.release()
    } catch (error) {
      return unprocessed(delivery, error)
    }
    // Outside the try: a retry releases what it cannot finish itself.
    let retry: Promise<void> | undefined
    try {
      retry = attempt(delivery, data, n + 1, key)
    } catch (error) {
      return unprocessed(delivery, error)
    }
    return await retry
  }

  return {
    processNow,
    /** For the `DeliveryHandler` contract: a promise whatever the delivery. */
    process: (delivery: TransportDelivery): Promise<void> => processNow(delivery) ?? acked,
  }
}
