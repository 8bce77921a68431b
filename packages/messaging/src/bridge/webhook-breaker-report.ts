import type { LoggerLike } from '@backplane/messaging'
import type { EventEmitter } from 'eventemitter3'
import type { BreakerSettings, BreakerSnapshot, BreakerState } from './breaker.js'
import type { BridgeEvents } from './bridge-events.js'
import { bridgeMetrics } from './metrics.js'
import type { ResolvedBridgeOptions } from './options.js'
import type { StoredSubscription } from './store.js'

/** The breaker as `GET /v1/subscriptions/{id}` shows it; times are ISO 8601. */
export interface BreakerView {
  state: BreakerState
  /** Failed calls since the last success. */
  failures: number
  openedAt: string | undefined
  nextProbeAt: string | undefined
  failingSince: string | undefined
  /** Probes made since it first opened. */
  probes: number
  disabledAt: string | undefined
  reason: string | undefined
  /** What it runs with: the subscription's own settings over `webhooks.breaker` (ms). */
  settings: BreakerSettings
}

export const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

export function breakerView(s: BreakerSnapshot, settings: BreakerSettings): BreakerView {
  return {
    state: s.state,
    failures: s.failures,
    openedAt: iso(s.openedAt),
    nextProbeAt: iso(s.nextProbeAt),
    failingSince: iso(s.failingSince),
    probes: s.probes,
    disabledAt: iso(s.disabledAt),
    reason: s.reason,
    settings,
  }
}

/** The subscription's own settings over the bridge's `webhooks.breaker`. */
export function breakerSettings(
  bridge: ResolvedBridgeOptions['webhooks']['breaker'],
  own: StoredSubscription['breaker'],
): BreakerSettings {
  return {
    failures: own?.failures ?? bridge.failures,
    schedule: own?.schedule ?? bridge.schedule,
    disableAfter: own?.disableAfter ?? bridge.disableAfter,
  }
}

export interface ReportTarget {
  id: string
  /** Redacted. */
  url: string
  logger: LoggerLike
  events: EventEmitter<BridgeEvents>
}

/** Emits without letting a listener's exception into the delivery that changed the state. */
function emit<E extends keyof BridgeEvents>(
  target: ReportTarget,
  event: E,
  payload: Parameters<BridgeEvents[E]>[0],
): void {
  try {
    ;(target.events.emit as (event: E, payload: unknown) => boolean)(event, payload)
  } catch (error) {
    target.logger.error({ event, err: (error as Error)?.message }, 'a bridge event listener threw')
  }
}

/**
 * Metrics, a log line and the `breaker` event for a state change; `disabledNow`: this change
 * disabled the subscription (not a flag restored from the store), which gets its warn line and
 * the `webhookDisabled` event.
 */
export function reportBreakerChange(
  target: ReportTarget,
  from: BreakerSnapshot,
  to: BreakerSnapshot,
  disabledNow: boolean,
): void {
  const { id, url, logger } = target
  const metrics = bridgeMetrics()
  if (from.state !== 'closed') metrics.breakers.add(-1, { 'backplane.subscription.id': id, state: from.state })
  if (to.state !== 'closed') metrics.breakers.add(1, { 'backplane.subscription.id': id, state: to.state })
  if (from.probing) {
    const outcome = to.state === 'closed' ? 'success' : 'failure'
    metrics.probes.add(1, { 'backplane.subscription.id': id, outcome })
  }
  const fields = { subscription: id, url, failures: to.failures, nextProbeAt: iso(to.nextProbeAt) }
  if (to.state === 'open' && from.state === 'closed')
    logger.warn(fields, 'webhook breaker opened: no calls until the next probe')
  else if (to.state === 'closed' && from.state === 'half-open')
    logger.info(fields, 'webhook breaker closed: delivering again')
  else logger.debug({ ...fields, from: from.state, to: to.state }, 'webhook breaker changed')
  emit(target, 'breaker', {
    subscription: id,
    url,
    from: from.state,
    to: to.state,
    failures: to.failures,
    failingSince: iso(to.failingSince),
    nextProbeAt: iso(to.nextProbeAt),
    at: new Date().toISOString(),
  })
  if (!disabledNow) return
  const reason = to.reason ?? 'disabled'
  logger.warn({ subscription: id, url, reason }, 'webhook subscription disabled by its breaker')
  emit(target, 'webhookDisabled', {
    subscription: id,
    url,
    reason,
    failingSince: iso(to.failingSince),
    at: iso(to.disabledAt) as string,
  })
}
