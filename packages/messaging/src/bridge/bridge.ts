import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Broker, createBroker, silentLogger } from '@backplane/messaging'
import type { EventEmitter } from 'eventemitter3'
import { createAuthenticator } from './auth.js'
import type { BridgeEvents } from './bridge-events.js'
import type { BridgeContext } from './context.js'
import { checkDeclared } from './declared.js'
import { type EtcdStoreOptions, etcdStore } from './etcd-store.js'
import { IdempotencyCache } from './idempotency.js'
import { BridgeLifecycle } from './lifecycle.js'
import { type BridgeOptions, parseBridgeOptions, type ResolvedBridgeOptions } from './options.js'
import { deadLetterEndpoints } from './resources/dead-letters.js'
import { eventsEndpoints } from './resources/events.js'
import { healthEndpoints } from './resources/health.js'
import { publishEndpoints } from './resources/publish.js'
import { routeEndpoints } from './resources/routes.js'
import { subscriptionEndpoints } from './resources/subscriptions.js'
import { createRouter, type Next } from './router.js'
import { RouteManager } from './routes.js'
import { createWebhookPolicy } from './ssrf.js'
import { createStarter } from './starter.js'
import { type BridgeStore, fileStore, memoryStore } from './store.js'
import { syncWithStore } from './store-sync.js'
import { createTopicResolver } from './topic-resolver.js'
import { WebhookManager } from './webhooks.js'

export interface Bridge {
  /**
   * The request listener: `http.createServer(bridge.handler)`, `app.use('/bridge', bridge.handler)`
   * (Express), or from a Fastify route with `reply.hijack()`. With `next`, requests for paths the
   * bridge does not serve go on to it instead of getting a 404.
   */
  handler(request: IncomingMessage, response: ServerResponse, next?: Next): void
  /** Resolves once the brokers are connected, the store is loaded and subscriptions and routes are started. */
  readonly ready: Promise<void>
  /** The connected brokers, by name (after `ready`). */
  readonly brokers: ReadonlyMap<string, Broker>
  /** `breaker` (a webhook breaker changed state) and `webhookDisabled` (a breaker disabled its subscription). */
  readonly events: EventEmitter<BridgeEvents>
  /** Ends SSE streams, stops subscriptions and routes (in-flight deliveries finish), closes the brokers it opened. */
  close(): Promise<void>
}

function resolveStore(options: ResolvedBridgeOptions): BridgeStore {
  const store = options.store
  if (store === false) return memoryStore()
  if ('file' in store && typeof store.file === 'string') return fileStore(store.file)
  if ('etcd' in store && typeof store.etcd === 'object') {
    return etcdStore({ ...(store.etcd as EtcdStoreOptions), logger: options.logger })
  }
  return store as BridgeStore
}

/** Connects the brokers given as URLs (the bridge closes those) and takes the connected ones as they are. */
async function connectBrokers(options: ResolvedBridgeOptions, brokers: Map<string, Broker>, owned: Broker[]) {
  for (const [name, target] of Object.entries(options.brokers)) {
    if (typeof target === 'string' || !('publish' in target)) {
      const { url, ...settings } = typeof target === 'string' ? { url: target } : target
      const broker = await createBroker(url, {
        source: options.source,
        ...(options.logger ? { logger: options.logger } : {}),
        ...settings,
      })
      owned.push(broker)
      brokers.set(name, broker)
    } else {
      brokers.set(name, target)
    }
  }
}

/** The parts of a bridge; the config's subscriptions and routes are checked here (BRIDGE_INVALID_CONFIG). */
function buildContext(options: ResolvedBridgeOptions): BridgeContext {
  const logger = options.logger ?? silentLogger
  const auth = createAuthenticator(options)
  const policy = createWebhookPolicy(options.webhooks.allow)
  const brokers = new Map<string, Broker>()
  const topics = createTopicResolver(options, brokers)
  const idempotency = new IdempotencyCache({ ttlMs: options.idempotency.ttl, max: options.idempotency.max })
  const store = resolveStore(options)
  const webhooks = new WebhookManager({
    settings: options.webhooks,
    policy,
    logger,
    onGone: (id) => {
      const origin = webhooks.origin(id)
      void webhooks
        .stop(id)
        .then(async () => {
          if (origin === 'api') await store.delete('subscription', id)
          else
            logger.warn(
              { subscription: id },
              'declared in the config: remove it there, or it comes back at the next start',
            )
        })
        .catch((error: unknown) =>
          logger.error({ subscription: id, err: (error as Error)?.message }, 'could not remove the subscription'),
        )
    },
    // A declared subscription's copy in the store keeps its origin (and createdAt) alongside the flag.
    save: (stored, origin) => store.put('subscription', origin === 'config' ? { ...stored, origin: 'config' } : stored),
  })
  const routes = new RouteManager({ settings: options.routing, logger })
  const declared = checkDeclared(options, topics, policy)
  return {
    options,
    logger,
    lifecycle: new BridgeLifecycle(),
    brokers,
    topics,
    auth,
    policy,
    idempotency,
    store,
    declared,
    webhooks,
    routes,
    start: createStarter({ topics, policy, webhooks, routes }),
    streams: new Set(),
  }
}

/**
 * The HTTP bridge: publish over HTTP, push to webhooks, stream as Server-Sent Events, route
 * between brokers. See the README's "HTTP bridge" section.
 */
export function createBridge(input: BridgeOptions): Bridge {
  const options = parseBridgeOptions(input)
  const ctx = buildContext(options)
  const { lifecycle, brokers, logger, webhooks, routes, store } = ctx
  const owned: Broker[] = []

  const ready = lifecycle.begin(
    (async () => {
      await connectBrokers(options, brokers, owned)
      await syncWithStore(ctx)
      if (lifecycle.phase === 'starting') lifecycle.phase = 'ready'
      logger.info(
        { brokers: ctx.topics.brokerNames, subscriptions: webhooks.size, routes: routes.size },
        'bridge ready',
      )
    })(),
    logger,
  )

  const handler = createRouter(ctx, [
    ...healthEndpoints(ctx),
    ...publishEndpoints(ctx),
    ...eventsEndpoints(ctx),
    ...subscriptionEndpoints(ctx),
    ...routeEndpoints(ctx),
    ...deadLetterEndpoints(ctx),
  ])

  return {
    handler,
    ready,
    brokers,
    events: webhooks.events,
    async close() {
      if (lifecycle.phase === 'closing') return
      lifecycle.phase = 'closing'
      for (const close of [...ctx.streams]) close()
      // Let a start in progress finish, so that nothing it opens is left behind.
      await ready.catch(() => {})
      await Promise.allSettled([webhooks.close(), routes.close()])
      await store.close().catch(() => {})
      await Promise.allSettled(owned.map((b) => b.close()))
    },
  }
}
