import http from 'node:http'
import https from 'node:https'
import {
  type Broker,
  type DeadLetterEvent,
  type LoggerLike,
  type Message,
  RetryAfterError,
  type Subscription,
} from '@backplane/messaging'
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { compileFilter, type HeaderPredicate } from './filter.js'
import { webhookGroup } from './groups.js'
import { bridgeMetrics } from './metrics.js'
import type { ResolvedBridgeOptions } from './options.js'
import { retryStart } from './retry-start.js'
import type { WebhookPolicy } from './ssrf.js'
import type { StoredSubscription } from './store.js'
import type { TopicRef } from './topics.js'
import { BRIDGE_TRACER, tracerRegistered } from './tracing.js'
import { callWebhook, parseRetryAfter, redactUrl, SIGNATURE_HEADER, signWebhookBody } from './webhook-client.js'
import { encodeHeaderValue } from './wire-rules.js'

export type WebhookSettings = ResolvedBridgeOptions['webhooks']

/** A failed webhook call: what the dead letter's `backplane-dlq-error` says. */
export class WebhookDeliveryError extends Error {
  override readonly name = 'WebhookDeliveryError'
  readonly status: number | undefined
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
  }
}

export type SubscriptionState = 'starting' | 'active' | 'failed' | 'gone'

/** A subscription as `GET /v1/subscriptions` shows it: no secret. */
export interface SubscriptionView extends Omit<StoredSubscription, 'secret' | 'origin'> {
  origin: 'config' | 'api'
  hasSecret: boolean
  state: SubscriptionState
  group: string
  stats: {
    delivered: number
    failedCalls: number
    deadLettered: number
    lastError: string | undefined
    lastDeliveredAt: string | undefined
  }
}

/** Message headers never copied into a webhook call: hop-by-hop, credentials, what the bridge and the core set. */
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'authorization',
  'cookie',
  'set-cookie',
  'user-agent',
  SIGNATURE_HEADER,
  'x-backplane-subscription',
  'x-backplane-attempt',
  // The core's publish time for an event that came with its own `time`: the broker's bookkeeping.
  'backplane-published',
])

const USER_AGENT = 'backplane-bridge/1'

interface Running {
  stored: StoredSubscription
  origin: 'config' | 'api'
  ref: TopicRef
  broker: Broker
  url: URL
  group: string
  filter: HeaderPredicate | undefined
  agent: http.Agent
  subscription: Subscription | undefined
  state: SubscriptionState
  stats: SubscriptionView['stats']
  retry: NodeJS.Timeout | undefined
  /** Started again (after a restart): read from the earliest, skip what predates `createdAt`. */
  since: number | undefined
}

export interface WebhookDeps {
  settings: WebhookSettings
  policy: WebhookPolicy
  logger: LoggerLike
  /** The receiver answered 410 Gone: remove the subscription (store included). */
  onGone(id: string): void
}

/**
 * The message's headers for the call. CloudEvents attributes go percent-encoded (HTTP binding
 * 3.1.3.2), so any Unicode value arrives intact; the bridge accepts no other header HTTP cannot
 * carry, so those dropped here came from another publisher on the broker.
 */
function forwardedHeaders(message: Message<unknown>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name in message.headers) {
    if (NOT_FORWARDED.has(name)) continue
    const given = message.headers[name] as string
    const value = name.startsWith('ce-') ? encodeHeaderValue(given) : given
    try {
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
    } catch {
      continue // a broker header HTTP cannot carry (binary, control characters)
    }
    headers[name] = value
  }
  return headers
}

/**
 * Webhook subscriptions: each one is its own broker subscription (its own consumer group, its
 * own retries and backoff, its own connection pool), so one dead receiver never slows another.
 */
export class WebhookManager {
  private readonly running = new Map<string, Running>()
  private readonly byGroup = new Map<string, Running>()
  private readonly watched = new WeakSet<Broker>()
  private closed = false

  constructor(private readonly deps: WebhookDeps) {}

  has(id: string): boolean {
    return this.running.has(id)
  }

  origin(id: string): 'config' | 'api' | undefined {
    return this.running.get(id)?.origin
  }

  topicOf(id: string): TopicRef | undefined {
    return this.running.get(id)?.ref
  }

  private register(
    stored: StoredSubscription,
    origin: 'config' | 'api',
    ref: TopicRef,
    broker: Broker,
    url: URL,
  ): Running {
    const concurrency = stored.concurrency ?? this.deps.settings.concurrency
    const agentOptions = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency }
    const run: Running = {
      stored,
      origin,
      ref,
      broker,
      url,
      group: stored.group ?? webhookGroup(stored.id),
      filter: compileFilter(stored.filter),
      agent: url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
      subscription: undefined,
      state: 'starting',
      stats: { delivered: 0, failedCalls: 0, deadLettered: 0, lastError: undefined, lastDeliveredAt: undefined },
      retry: undefined,
      since: undefined,
    }
    this.running.set(stored.id, run)
    this.byGroup.set(`${ref.broker}\u0000${ref.topic}\u0000${run.group}`, run)
    this.watchDeadLetters(broker, ref.broker)
    return run
  }

  /** Subscribes and starts delivering. Rejects if the broker refuses the subscription. */
  async start(
    stored: StoredSubscription,
    origin: 'config' | 'api',
    ref: TopicRef,
    broker: Broker,
    url: URL,
  ): Promise<void> {
    const run = this.register(stored, origin, ref, broker, url)
    try {
      await this.subscribe(run)
    } catch (error) {
      this.forget(run)
      throw error
    }
  }

  /**
   * Like start, for subscriptions loaded from the config or the store: a broker that refuses
   * now (down, still connecting) is tried again with backoff instead of failing the bridge.
   * `resume`: it ran before (this is a restart). Its group then reads from the earliest message
   * and skips those published before the subscription was created: a partition (or stream) the
   * group never committed a position on is read from where it would have been, not from
   * "latest", which would lose what was published while the bridge was down.
   */
  startInBackground(
    stored: StoredSubscription,
    origin: 'config' | 'api',
    ref: TopicRef,
    broker: Broker,
    url: URL,
    resume: boolean,
  ): Promise<void> {
    const run = this.register(stored, origin, ref, broker, url)
    if (resume && broker.health().capabilities.replay) run.since = Date.parse(stored.createdAt)
    return this.subscribe(run).catch((error: unknown) => {
      if (this.closed || this.running.get(stored.id) !== run) return
      run.state = 'failed'
      run.stats.lastError = (error as Error)?.message ?? String(error)
      this.deps.logger.error(
        { subscription: stored.id, topic: ref.qualified, err: run.stats.lastError },
        'webhook subscription could not start; retrying',
      )
      this.retryLater(run, 1_000)
    })
  }

  private retryLater(run: Running, delay: number): void {
    retryStart(
      run,
      () => !this.closed && this.running.get(run.stored.id) === run,
      () => this.subscribe(run),
      delay,
    )
  }

  private async subscribe(run: Running): Promise<void> {
    const { stored, ref } = run
    const settings = this.deps.settings
    const options = {
      group: run.group,
      from: run.since === undefined ? ('latest' as const) : ('earliest' as const),
      retry: { ...settings.retry, maxAttempts: stored.maxAttempts ?? settings.retry.maxAttempts },
      concurrency: stored.concurrency ?? settings.concurrency,
      ordered: true,
      raw: true,
      ...(stored.deadLetter === undefined ? {} : { deadLetter: stored.deadLetter }),
    }
    run.subscription = await run.broker.subscribe<Uint8Array>(
      ref.topic,
      (message) => this.deliver(run, message),
      options,
    )
    run.state = 'active'
    if (this.closed || this.running.get(stored.id) !== run) await run.subscription.close()
  }

  private watchDeadLetters(broker: Broker, brokerName: string): void {
    if (this.watched.has(broker)) return
    this.watched.add(broker)
    broker.events.on('deadLetter', (event: DeadLetterEvent) => {
      const run = this.byGroup.get(`${brokerName}\u0000${event.topic}\u0000${event.group ?? ''}`)
      if (!run) return
      run.stats.deadLettered++
      this.deps.logger.warn(
        {
          subscription: run.stored.id,
          id: event.id,
          reason: event.reason,
          deadLetterTopic: event.deadLetterTopic,
          err: event.error,
        },
        'webhook message dead-lettered',
      )
    })
  }

  private async deliver(run: Running, message: Message<Uint8Array>): Promise<void> {
    const metrics = bridgeMetrics()
    const id = run.stored.id
    if (run.state === 'gone') return
    if (run.since !== undefined && message.publishedAt.getTime() < run.since) return
    if (run.filter && !run.filter(message.headers)) {
      metrics.webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: 'filtered' })
      return
    }
    const headers = forwardedHeaders(message)
    headers['content-type'] ??= 'application/octet-stream'
    headers['user-agent'] = USER_AGENT
    headers['x-backplane-subscription'] = id
    headers['x-backplane-attempt'] = String(message.attempt)
    if (message.key !== undefined) headers['ce-partitionkey'] ??= encodeHeaderValue(message.key)
    if (run.stored.secret !== undefined) headers[SIGNATURE_HEADER] = signWebhookBody(run.stored.secret, message.raw)

    // The handler runs in the message's trace (the core's process span): the call continues it.
    const active = context.active()
    const span = tracerRegistered()
      ? trace.getTracer(BRIDGE_TRACER).startSpan(
          'POST',
          {
            kind: SpanKind.CLIENT,
            attributes: {
              'http.request.method': 'POST',
              'url.full': redactUrl(run.url),
              'server.address': run.url.hostname,
              'server.port': Number(run.url.port || (run.url.protocol === 'https:' ? 443 : 80)),
              'backplane.subscription.id': id,
            },
          },
          active,
        )
      : undefined
    propagation.inject(span ? trace.setSpan(active, span) : active, headers)

    const started = performance.now()
    let status: number | undefined
    let failure: Error | undefined
    try {
      const response = await callWebhook({
        url: run.url,
        body: message.raw,
        headers,
        timeoutMs: this.deps.settings.timeout,
        agent: run.agent,
        policy: this.deps.policy,
      })
      status = response.status
      if (status >= 200 && status < 300) {
        run.stats.delivered++
        run.stats.lastDeliveredAt = new Date().toISOString()
        metrics.webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: 'delivered' })
        return
      }
      if (status === 410) {
        metrics.webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: 'gone' })
        this.gone(run)
        return
      }
      const text = `POST ${redactUrl(run.url)} answered ${status}${response.snippet ? `: ${response.snippet}` : ''}`
      if (status === 429 || status === 503) {
        const delay = parseRetryAfter(response.retryAfter)
        if (delay !== undefined) {
          failure = new RetryAfterError(text, Math.min(delay, this.deps.settings.maxRetryAfter))
          throw failure
        }
      }
      failure = new WebhookDeliveryError(text, status)
      throw failure
    } catch (error) {
      failure ??= new WebhookDeliveryError(
        `POST ${redactUrl(run.url)} failed: ${(error as Error)?.message ?? error}`,
        undefined,
        {
          cause: error,
        },
      )
      run.stats.failedCalls++
      run.stats.lastError = failure.message
      metrics.webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: 'failed' })
      throw failure
    } finally {
      metrics.webhookDuration.record((performance.now() - started) / 1000, { 'backplane.subscription.id': id })
      if (span) {
        if (status !== undefined) span.setAttribute('http.response.status_code', status)
        if (failure) span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message })
        span.end()
      }
    }
  }

  private gone(run: Running): void {
    if (run.state === 'gone') return
    run.state = 'gone'
    this.deps.logger.warn(
      { subscription: run.stored.id, url: redactUrl(run.url) },
      'webhook receiver answered 410 Gone: subscription removed',
    )
    // Not awaited here: closing waits for the handlers in progress, this one included.
    setImmediate(() => this.deps.onGone(run.stored.id))
  }

  private forget(run: Running): void {
    if (this.running.get(run.stored.id) === run) this.running.delete(run.stored.id)
    const key = `${run.ref.broker}\u0000${run.ref.topic}\u0000${run.group}`
    if (this.byGroup.get(key) === run) this.byGroup.delete(key)
    if (run.retry) clearTimeout(run.retry)
    run.agent.destroy()
  }

  /** Stops delivering (handlers in progress finish first). False if there is no such subscription. */
  async stop(id: string): Promise<boolean> {
    const run = this.running.get(id)
    if (!run) return false
    this.forget(run)
    if (run.state !== 'gone') run.state = 'failed'
    await run.subscription?.close()
    return true
  }

  view(id: string): SubscriptionView | undefined {
    const run = this.running.get(id)
    if (!run) return undefined
    const { secret, origin: _, ...rest } = run.stored
    return {
      ...rest,
      group: run.group,
      origin: run.origin,
      hasSecret: secret !== undefined,
      state: run.state,
      stats: { ...run.stats },
    }
  }

  list(): SubscriptionView[] {
    return [...this.running.keys()].map((id) => this.view(id) as SubscriptionView)
  }

  get size(): number {
    return this.running.size
  }

  /** Every subscription is running (none starting or failed). */
  allActive(): boolean {
    for (const run of this.running.values()) if (run.state !== 'active' && run.state !== 'gone') return false
    return true
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.running.keys()].map((id) => this.stop(id)))
  }
}
