import { BridgeError } from './errors.js'
import { configId } from './ids.js'
import type { ResolvedBridgeOptions } from './options.js'
import { findLoop } from './routes.js'
import type { WebhookPolicy } from './ssrf.js'
import type { StoredRoute, StoredSubscription, StoreKind } from './store.js'
import type { TopicResolver } from './topic-resolver.js'
import { checkDeadLetter } from './topics.js'

/** The subscriptions and routes declared in the config, with their ids. */
export interface DeclaredItems {
  readonly subscriptions: StoredSubscription[]
  readonly routes: StoredRoute[]
  /** Whether the config declares this item: the config's copy is the one that counts. */
  has(kind: StoreKind, id: string): boolean
}

/**
 * Checks what the config declares now, so that a bad config fails createBridge, not the first
 * request: every problem is listed in one BRIDGE_INVALID_CONFIG error.
 */
export function checkDeclared(
  options: ResolvedBridgeOptions,
  topics: TopicResolver,
  policy: WebhookPolicy,
): DeclaredItems {
  const subscriptions: StoredSubscription[] = []
  const routes: StoredRoute[] = []
  const configErrors: string[] = []
  options.subscriptions.forEach((s, i) => {
    try {
      topics.resolve(s.topic)
      policy.checkStatic(s.url)
      checkDeadLetter(s.deadLetter)
      const id = s.id ?? configId('cfg', s.topic, s.url, s.group)
      if (subscriptions.some((d) => d.id === id)) throw new Error(`id ${id} is used twice`)
      subscriptions.push({ ...s, id, createdAt: new Date(0).toISOString() })
    } catch (error) {
      configErrors.push(`subscriptions[${i}]: ${(error as Error).message}`)
    }
  })
  options.routes.forEach((r, i) => {
    try {
      const source = topics.resolve(r.source, 'source')
      const destinations = r.destinations.map((d) => topics.resolve(d, 'destination'))
      if (destinations.some((d) => d.qualified === source.qualified))
        throw new Error('a route cannot write to its own source')
      checkDeadLetter(r.deadLetter)
      const id = r.id ?? configId('cfg', r.source, ...r.destinations)
      if (routes.some((d) => d.id === id)) throw new Error(`id ${id} is used twice`)
      routes.push({ ...r, id, createdAt: new Date(0).toISOString() })
    } catch (error) {
      configErrors.push(`routes[${i}]: ${(error as Error).message}`)
    }
  })
  if (configErrors.length === 0) {
    const loop = findLoop(
      routes.map((r) => ({
        source: topics.qualify(r.source),
        destinations: r.destinations.map((d) => topics.qualify(d)),
      })),
    )
    if (loop) configErrors.push(`routes: they make a loop: ${loop.join(' → ')}`)
  }
  if (configErrors.length > 0) {
    throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `invalid bridge options: ${configErrors.join('; ')}`, {
      details: configErrors,
    })
  }
  return {
    subscriptions,
    routes,
    has: (kind, id) =>
      kind === 'subscription' ? subscriptions.some((d) => d.id === id) : routes.some((d) => d.id === id),
  }
}
