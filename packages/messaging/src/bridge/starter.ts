import type { RouteManager } from './routes.js'
import type { WebhookPolicy } from './ssrf.js'
import type { StoredRoute, StoredSubscription } from './store.js'
import type { TopicResolver } from './topic-resolver.js'
import type { WebhookManager } from './webhooks.js'

/** `new`: added now (fails if the broker refuses); `first`/`again`: loaded at start, first time or after a restart. */
export type StartMode = 'new' | 'first' | 'again'
export type Origin = 'config' | 'api'

/**
 * Starts stored subscriptions and routes on their brokers. A topic or URL that is no longer
 * valid throws at once (not in the promise), so start-up can skip that item and go on.
 */
export interface Starter {
  subscription(stored: StoredSubscription, origin: Origin, mode: StartMode): Promise<void>
  route(stored: StoredRoute, origin: Origin, mode: StartMode): Promise<void>
}

export interface StarterParts {
  topics: TopicResolver
  policy: WebhookPolicy
  webhooks: WebhookManager
  routes: RouteManager
}

export function createStarter({ topics, policy, webhooks, routes }: StarterParts): Starter {
  return {
    subscription(stored, origin, mode) {
      const ref = topics.resolve(stored.topic)
      const url = policy.checkStatic(stored.url)
      const broker = topics.brokerOf(ref)
      return mode === 'new'
        ? webhooks.start(stored, origin, ref, broker, url)
        : webhooks.startInBackground(stored, origin, ref, broker, url, mode === 'again')
    },
    route(stored, origin, mode) {
      const source = topics.resolve(stored.source, 'source')
      const targets = stored.destinations.map((d) => {
        const ref = topics.resolve(d, 'destination')
        return { ref, broker: topics.brokerOf(ref) }
      })
      const broker = topics.brokerOf(source)
      return mode === 'new'
        ? routes.start(stored, origin, source, broker, targets)
        : routes.startInBackground(stored, origin, source, broker, targets, mode === 'again')
    },
  }
}
