import type { Broker, LoggerLike } from '@backplane/messaging'
import type { Authenticator } from './auth.js'
import type { DeclaredItems } from './declared.js'
import type { IdempotencyCache } from './idempotency.js'
import type { BridgeLifecycle } from './lifecycle.js'
import type { ResolvedBridgeOptions } from './options.js'
import type { RouteManager } from './routes.js'
import type { WebhookPolicy } from './ssrf.js'
import type { Starter } from './starter.js'
import type { BridgeStore } from './store.js'
import type { TopicResolver } from './topic-resolver.js'
import type { WebhookManager } from './webhooks.js'

/**
 * Everything one bridge is made of, built by createBridge. Each part of the bridge (start-up, a
 * resource's endpoints) takes the fields it uses (`Pick<BridgeContext, ...>`), not a closure.
 */
export interface BridgeContext {
  readonly options: ResolvedBridgeOptions
  readonly logger: LoggerLike
  readonly lifecycle: BridgeLifecycle
  /** The connected brokers, by name (filled in at start-up). */
  readonly brokers: Map<string, Broker>
  readonly topics: TopicResolver
  readonly auth: Authenticator
  readonly policy: WebhookPolicy
  readonly idempotency: IdempotencyCache
  readonly store: BridgeStore
  readonly declared: DeclaredItems
  readonly webhooks: WebhookManager
  readonly routes: RouteManager
  readonly start: Starter
  /** Closers of the open SSE streams: the bridge ends them when it closes. */
  readonly streams: Set<() => void>
}
