import http from 'node:http'
import https from 'node:https'
import { brandError, NON_RETRYABLE_BRAND } from '@backplane/internal'
import type { Broker, Message, Subscription } from '@backplane/messaging'
import { compileFilter, type HeaderPredicate } from './filter.js'
import { webhookGroup } from './groups.js'
import type { ResolvedBridgeOptions } from './options.js'
import type { WebhookPolicy } from './ssrf.js'
import type { StoredSubscription } from './store.js'
import type { TopicRef } from './topics.js'
import { type BreakerView, breakerSettings, breakerView } from './webhook-breaker-report.js'
import type { WebhookTarget } from './webhook-call.js'
import { type CircuitEffects, WebhookCircuit } from './webhook-circuit.js'

/** `disabled`: stopped by its breaker until `POST /v1/subscriptions/{id}/enable`. */
export type SubscriptionState = 'starting' | 'active' | 'failed' | 'gone' | 'disabled'

/** A subscription as `GET /v1/subscriptions` shows it: no secret. */
export interface SubscriptionView extends Omit<StoredSubscription, 'secret' | 'origin' | 'disabled' | 'breaker'> {
  origin: 'config' | 'api'
  hasSecret: boolean
  state: SubscriptionState
  group: string
  breaker: BreakerView
  stats: {
    delivered: number
    failedCalls: number
    deadLettered: number
    lastError: string | undefined
    lastDeliveredAt: string | undefined
  }
}

/** Messages whose failed attempts are remembered at once; the oldest is forgotten past this. */
const TRACKED_MESSAGES = 10_000

/** One webhook subscription while it runs here. */
export interface Running {
  stored: StoredSubscription
  origin: 'config' | 'api'
  ref: TopicRef
  broker: Broker
  url: URL
  group: string
  filter: HeaderPredicate | undefined
  agent: http.Agent
  target: WebhookTarget
  maxAttempts: number
  /** The core's limit of attempts in the current broker subscription. */
  coreAttempts: number
  /** Paused by its breaker at least once: the bridge counts the attempts (see subscribeOnce). */
  paused: boolean
  circuit: WebhookCircuit
  subscription: Subscription | undefined
  subscribing: Promise<void> | undefined
  state: SubscriptionState
  stats: SubscriptionView['stats']
  retry: NodeJS.Timeout | undefined
  /** Started again (after a restart or a pause): read from the earliest, skip what predates `createdAt`. */
  since: number | undefined
  /** Failed calls per message id made while the endpoint was otherwise healthy. */
  attempts: Map<string, number>
}

export interface RunParts {
  stored: StoredSubscription
  origin: 'config' | 'api'
  ref: TopicRef
  broker: Broker
  url: URL
  settings: ResolvedBridgeOptions['webhooks']
  policy: WebhookPolicy
}

/** A subscription's run: its own connection pool, its target, its breaker (driving `effects`). */
export function newRun(parts: RunParts, effects: CircuitEffects): Running {
  const { stored, url, settings } = parts
  const concurrency = stored.concurrency ?? settings.concurrency
  const agentOptions = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency }
  const agent = url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
  return {
    stored,
    origin: parts.origin,
    ref: parts.ref,
    broker: parts.broker,
    url,
    group: stored.group ?? webhookGroup(stored.id),
    filter: compileFilter(stored.filter),
    agent,
    target: {
      id: stored.id,
      url,
      secret: stored.secret,
      agent,
      policy: parts.policy,
      timeoutMs: settings.timeout,
      maxRetryAfter: settings.maxRetryAfter,
    },
    maxAttempts: stored.maxAttempts ?? settings.retry.maxAttempts,
    coreAttempts: stored.maxAttempts ?? settings.retry.maxAttempts,
    paused: false,
    circuit: new WebhookCircuit(breakerSettings(settings.breaker, stored.breaker), effects),
    subscription: undefined,
    subscribing: undefined,
    state: 'starting',
    stats: { delivered: 0, failedCalls: 0, deadLettered: 0, lastError: undefined, lastDeliveredAt: undefined },
    retry: undefined,
    since: undefined,
    attempts: new Map(),
  }
}

/**
 * Counts a failed call of a message while the endpoint is otherwise healthy. At `maxAttempts`,
 * where the core would not dead-letter it now (its limit is lifted), the failure is marked
 * non-retryable with reason `max-attempts`, so the core dead-letters the message at once and
 * says why as it would have.
 */
export function countFailure(run: Running, message: Message<unknown>, error: Error): Error {
  const failed = (run.attempts.get(message.id) ?? 0) + 1
  run.attempts.delete(message.id)
  if (failed >= run.maxAttempts) {
    if (message.attempt < run.coreAttempts) {
      // Dead-lettered at once by the core, as run out of attempts (NonRetryableError's `reason`).
      brandError(error, NON_RETRYABLE_BRAND)
      ;(error as { reason?: string }).reason = 'max-attempts'
    }
    return error
  }
  run.attempts.set(message.id, failed)
  if (run.attempts.size > TRACKED_MESSAGES) run.attempts.delete(run.attempts.keys().next().value as string)
  return error
}

export function viewOf(run: Running): SubscriptionView {
  const { secret, origin: _, disabled: __, breaker: ___, ...rest } = run.stored
  return {
    ...rest,
    group: run.group,
    origin: run.origin,
    hasSecret: secret !== undefined,
    state: run.state,
    breaker: breakerView(run.circuit.snapshot, run.circuit.settings),
    stats: { ...run.stats },
  }
}
