import { type Broker, type DeadLetterEvent, type LoggerLike, type Message, RetryAfterError } from '@backplane/messaging'
import { EventEmitter } from 'eventemitter3'
import type { BreakerSnapshot } from './breaker.js'
import type { BridgeEvents } from './bridge-events.js'
import { bridgeMetrics } from './metrics.js'
import type { ResolvedBridgeOptions } from './options.js'
import { retryStart } from './retry-start.js'
import type { WebhookPolicy } from './ssrf.js'
import type { StoredSubscription } from './store.js'
import type { TopicRef } from './topics.js'
import { iso, reportBreakerChange } from './webhook-breaker-report.js'
import { callOnce } from './webhook-call.js'
import { redactUrl } from './webhook-client.js'
import { countFailure, newRun, type Running, type SubscriptionView, viewOf } from './webhook-run.js'

export type { SubscriptionState, SubscriptionView } from './webhook-run.js'

export type WebhookSettings = ResolvedBridgeOptions['webhooks']

/** The core's limit once the bridge counts a subscription's attempts itself (see `subscribeOnce`). */
const UNLIMITED = Number.MAX_SAFE_INTEGER

export interface WebhookDeps {
  settings: WebhookSettings
  policy: WebhookPolicy
  logger: LoggerLike
  /** The receiver answered 410 Gone: remove the subscription (store included). */
  onGone(id: string): void
  /** Keeps the subscription as it is now (its disabled flag) in the store. */
  save(stored: StoredSubscription, origin: 'config' | 'api'): Promise<void>
}

/**
 * Webhook subscriptions: each one is its own broker subscription (its own consumer group, its
 * own retries and backoff, its own connection pool and its own circuit breaker), so one dead
 * receiver never slows another. An open breaker closes the broker subscription: the messages wait
 * in the broker, not here.
 */
export class WebhookManager {
  /** `breaker` and `webhookDisabled` (see bridge-events.ts). */
  readonly events = new EventEmitter<BridgeEvents>()
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
    const { settings, policy, logger } = this.deps
    const run = newRun(
      { stored, origin, ref, broker, url, settings, policy },
      {
        pause: () => this.pause(run),
        resume: () => this.resume(run),
        changed: (from, to) => this.breakerChanged(run, from, to),
        failed: (what, error) =>
          logger.error(
            { subscription: stored.id, err: (error as Error)?.message ?? String(error) },
            `webhook ${what} failed`,
          ),
      },
    )
    this.running.set(stored.id, run)
    this.byGroup.set(`${ref.broker}\u0000${ref.topic}\u0000${run.group}`, run)
    this.watchDeadLetters(broker, ref.broker)
    // Disabled before a restart (or by another bridge): it stays so until enabled.
    if (stored.disabled) run.circuit.disable(stored.disabled.reason, Date.parse(stored.disabled.at) || Date.now())
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
    if (!run.circuit.consuming) return Promise.resolve()
    return this.subscribe(run).catch((error: unknown) => this.startFailed(run, error))
  }

  private startFailed(run: Running, error: unknown): void {
    if (!this.current(run)) return
    run.state = 'failed'
    run.stats.lastError = (error as Error)?.message ?? String(error)
    this.deps.logger.error(
      { subscription: run.stored.id, topic: run.ref.qualified, err: run.stats.lastError },
      'webhook subscription could not start; retrying',
    )
    retryStart(
      run,
      () => this.current(run) && run.circuit.consuming,
      () => this.subscribe(run),
      1_000,
    )
  }

  /** Still the running subscription of its id, and the bridge not closing. */
  private current(run: Running): boolean {
    return !this.closed && this.running.get(run.stored.id) === run
  }

  private subscribe(run: Running): Promise<void> {
    run.subscribing ??= this.subscribeOnce(run).finally(() => {
      run.subscribing = undefined
    })
    return run.subscribing
  }

  private async subscribeOnce(run: Running): Promise<void> {
    if (run.subscription) return
    const { stored, ref } = run
    const settings = this.deps.settings
    // Until the first pause the core's count of attempts is the endpoint's, and the core
    // dead-letters at maxAttempts as for any subscriber. A pause sends messages back to the
    // broker, which counts that as a redelivery (memory, JetStream): from then on the bridge
    // counts the calls that failed while the endpoint was otherwise healthy, and the core's
    // limit is lifted (not on a broker that cannot redeliver: nothing comes back there).
    const coreAttempts = run.paused && run.broker.health().capabilities.atLeastOnce ? UNLIMITED : run.maxAttempts
    const options = {
      group: run.group,
      from: run.since === undefined ? ('latest' as const) : ('earliest' as const),
      retry: { ...settings.retry, maxAttempts: coreAttempts },
      concurrency: stored.concurrency ?? settings.concurrency,
      ordered: true,
      raw: true,
      ...(stored.deadLetter === undefined ? {} : { deadLetter: stored.deadLetter }),
    }
    const subscription = await run.broker.subscribe<Uint8Array>(
      ref.topic,
      (message) => this.deliver(run, message),
      options,
    )
    if (!this.current(run) || !run.circuit.consuming) {
      await subscription.close()
      return
    }
    run.subscription = subscription
    run.coreAttempts = coreAttempts
    run.state = 'active'
  }

  /** The breaker opened or disabled the subscription: the broker keeps the messages meanwhile. */
  private async pause(run: Running): Promise<void> {
    await run.subscribing?.catch(() => {})
    const subscription = run.subscription
    run.subscription = undefined
    run.paused = true
    // Deliveries in progress end; those waiting for a retry or held back go back to the broker.
    await subscription?.close()
  }

  private async resume(run: Running): Promise<void> {
    if (!this.current(run) || run.subscription) return
    // The group has a position by now: where it has none (a partition it never read), read
    // from the earliest kept, not the latest, or what came while paused would be skipped.
    if (run.since === undefined && run.broker.health().capabilities.replay) run.since = Date.parse(run.stored.createdAt)
    if (run.state === 'disabled') run.state = 'starting'
    await this.subscribe(run).catch((error: unknown) => this.startFailed(run, error))
  }

  private breakerChanged(run: Running, from: BreakerSnapshot, to: BreakerSnapshot): void {
    const { logger } = this.deps
    const id = run.stored.id
    // A flag restored from the store was said and kept before.
    const disabledNow = to.state === 'disabled' && run.stored.disabled === undefined
    reportBreakerChange({ id, url: redactUrl(run.url), logger, events: this.events }, from, to, disabledNow)
    if (to.state === 'disabled') run.state = 'disabled'
    if (!disabledNow) return
    run.stored = { ...run.stored, disabled: { at: iso(to.disabledAt) as string, reason: to.reason ?? 'disabled' } }
    this.deps
      .save(run.stored, run.origin)
      .catch((error: unknown) =>
        logger.error(
          { subscription: id, err: (error as Error)?.message },
          'could not keep the disabled flag in the store',
        ),
      )
  }

  /**
   * Resets the breaker and delivers again (`POST /v1/subscriptions/{id}/enable`): the store
   * forgets the disabled flag first, so a restart does not disable it again.
   */
  async enable(id: string): Promise<void> {
    const run = this.running.get(id)
    if (!run) return
    if (run.stored.disabled) {
      const { disabled: _, ...enabled } = run.stored
      await this.deps.save(enabled, run.origin)
      run.stored = enabled
    }
    run.circuit.enable()
    await run.circuit.idle()
  }

  /** Another bridge disabled or enabled a subscription both run from the config. */
  syncDisabled(id: string, disabled: StoredSubscription['disabled']): void {
    const run = this.running.get(id)
    if (!run || Boolean(run.stored.disabled) === Boolean(disabled)) return
    if (disabled) {
      run.stored = { ...run.stored, disabled }
      run.circuit.disable(disabled.reason, Date.parse(disabled.at) || Date.now())
    } else {
      const { disabled: _, ...enabled } = run.stored
      run.stored = enabled
      run.circuit.enable()
    }
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

  /** Sent back to the broker (not dead-lettered, not acked) when the subscription pauses. */
  private heldBack(run: Running, failure?: Error): RetryAfterError {
    const { state, nextProbeAt } = run.circuit.snapshot
    const wait = nextProbeAt === undefined ? 1_000 : Math.max(1_000, nextProbeAt - Date.now())
    const held = `webhook breaker ${state}: the message waits in the broker`
    return new RetryAfterError(failure ? `${failure.message} (${held})` : held, wait)
  }

  /**
   * One message: the breaker admits it (or sends it back), one call, and the outcome. A failure
   * while the breaker is not closed is the endpoint's, not the message's: it does not count
   * against `maxAttempts`, and the message goes back to the broker when the subscription pauses.
   */
  private async deliver(run: Running, message: Message<Uint8Array>): Promise<void> {
    const id = run.stored.id
    if (run.state === 'gone') return
    if (run.since !== undefined && message.publishedAt.getTime() < run.since) return
    if (run.filter && !run.filter(message.headers)) {
      bridgeMetrics().webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: 'filtered' })
      return
    }
    const admission = await run.circuit.admit()
    if (admission === 'refuse') throw this.heldBack(run)
    const probe = admission === 'probe'
    const outcome = await callOnce(run.target, message)
    if (outcome.kind === 'delivered') {
      run.stats.delivered++
      run.stats.lastDeliveredAt = new Date().toISOString()
      run.attempts.delete(message.id)
      run.circuit.report(true, probe)
      return
    }
    if (outcome.kind === 'gone') {
      this.gone(run)
      return
    }
    run.stats.failedCalls++
    run.stats.lastError = outcome.error.message
    run.circuit.report(!outcome.endpointFault, probe, outcome.retryAfter)
    if (outcome.endpointFault && run.circuit.snapshot.state !== 'closed') throw this.heldBack(run, outcome.error)
    throw countFailure(run, message, outcome.error)
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
    const { state } = run.circuit.snapshot
    if (state !== 'closed') bridgeMetrics().breakers.add(-1, { 'backplane.subscription.id': run.stored.id, state })
    run.circuit.stop()
    run.agent.destroy()
  }

  /** Stops delivering (handlers in progress finish first). False if there is no such subscription. */
  async stop(id: string): Promise<boolean> {
    const run = this.running.get(id)
    if (!run) return false
    this.forget(run)
    if (run.state !== 'gone') run.state = 'failed'
    await run.circuit.idle()
    await run.subscribing?.catch(() => {})
    const subscription = run.subscription
    run.subscription = undefined
    await subscription?.close()
    return true
  }

  view(id: string): SubscriptionView | undefined {
    const run = this.running.get(id)
    return run && viewOf(run)
  }

  list(): SubscriptionView[] {
    return [...this.running.keys()].map((id) => this.view(id) as SubscriptionView)
  }

  get size(): number {
    return this.running.size
  }

  /** Every subscription is running (none starting or failed); disabled ones are where they should be. */
  allActive(): boolean {
    for (const run of this.running.values()) if (run.state === 'starting' || run.state === 'failed') return false
    return true
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.running.keys()].map((id) => this.stop(id)))
  }
}
