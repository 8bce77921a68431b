import type { BreakerState } from './breaker.js'

/** A webhook subscription's breaker changed state. Times are ISO 8601. */
export interface BreakerChangeEvent {
  subscription: string
  /** The URL without credentials, query or fragment. */
  url: string
  from: BreakerState
  to: BreakerState
  /** Failed calls since the last success. */
  failures: number
  failingSince: string | undefined
  nextProbeAt: string | undefined
  at: string
}

/** A webhook subscription was disabled by its breaker: nothing is called until it is enabled again. */
export interface WebhookDisabledEvent {
  subscription: string
  url: string
  reason: string
  failingSince: string | undefined
  at: string
}

/**
 * What `bridge.events` emits (an EventEmitter, like a broker's `events`): `breaker` on each state
 * change of a webhook breaker, `webhookDisabled` when one disables its subscription.
 */
export interface BridgeEvents {
  breaker: (event: BreakerChangeEvent) => void
  webhookDisabled: (event: WebhookDisabledEvent) => void
}
