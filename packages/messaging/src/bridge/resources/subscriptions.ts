import { forbidden, type Principal } from '../auth.js'
import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint, type Exchange } from '../endpoint.js'
import { BridgeError } from '../errors.js'
import { newId } from '../ids.js'
import { subscriptionInputSchema } from '../options.js'
import type { StoredSubscription } from '../store.js'
import { checkDeadLetter } from '../topics.js'
import { readJsonInput } from './json-input.js'
import { refuseTaken, removeUnlessDeclared, startThenStore } from './managed.js'

export type SubscriptionsContext = Pick<
  BridgeContext,
  'options' | 'logger' | 'auth' | 'topics' | 'policy' | 'webhooks' | 'store' | 'start'
>

/**
 * `/v1/subscriptions`: list and add webhook subscriptions; `/v1/subscriptions/{id}`: read, delete;
 * `/v1/subscriptions/{id}/enable`: reset its breaker and deliver again.
 */
export function subscriptionEndpoints(ctx: SubscriptionsContext): Endpoint[] {
  const { options, logger, auth, topics, policy, webhooks, store, start } = ctx
  const authenticate = ({ request }: Exchange) => auth.authenticate(request, undefined)

  /** The subscription, if the caller may see it: 404 either way, so ids do not leak. */
  function find(exchange: Exchange): { principal: Principal; id: string } {
    const principal = authenticate(exchange)
    const id = exchange.params.id as string
    const ref = webhooks.topicOf(id)
    if (ref === undefined || !principal.canSubscribe(ref)) {
      throw new BridgeError(404, 'NOT_FOUND', `no subscription ${JSON.stringify(id)}`)
    }
    return { principal, id }
  }

  return [
    defineEndpoint({
      path: '/v1/subscriptions',
      resolve: authenticate,
      methods: {
        GET: (_, principal) => ({
          status: 200,
          body: { subscriptions: webhooks.list().filter((s) => topics.visible(principal, s.topic)) },
        }),
        async POST({ request }, principal) {
          const input = await readJsonInput(request, subscriptionInputSchema, options.limits)
          const ref = topics.resolve(input.topic)
          if (!principal.canSubscribe(ref)) throw forbidden(principal, 'subscribe to', ref)
          checkDeadLetter(input.deadLetter)
          await policy.check(input.url)
          const subscriptionId = input.id ?? newId('sub')
          refuseTaken('subscription', subscriptionId, webhooks)
          const stored: StoredSubscription = { ...input, id: subscriptionId, createdAt: new Date().toISOString() }
          await startThenStore(subscriptionId, webhooks, {
            start: () => start.subscription(stored, 'api', 'new'),
            put: () => store.put('subscription', stored),
          })
          logger.info({ subscription: subscriptionId, topic: ref.qualified, by: principal.id }, 'subscription added')
          return { status: 201, body: webhooks.view(subscriptionId) }
        },
      },
    }),
    defineEndpoint({
      // Before `{id*}`, which would take `x/enable` for an id. Needs what deleting it needs.
      path: '/v1/subscriptions/{id}/enable',
      resolve: find,
      methods: {
        async POST(_, { principal, id }) {
          try {
            await webhooks.enable(id)
          } catch (error) {
            throw BridgeError.is(error) ? error : new BridgeError(503, 'STORE_FAILED', String(error))
          }
          logger.info({ subscription: id, by: principal.id }, 'subscription enabled')
          return { status: 200, body: webhooks.view(id) }
        },
      },
    }),
    defineEndpoint({
      path: '/v1/subscriptions/{id*}',
      resolve: find,
      methods: {
        GET: (_, { id }) => ({ status: 200, body: webhooks.view(id) }),
        async DELETE(_, { principal, id }) {
          await removeUnlessDeclared('subscription', id, webhooks, () => store.delete('subscription', id))
          logger.info({ subscription: id, by: principal.id }, 'subscription removed')
          return { status: 204, body: undefined }
        },
      },
    }),
  ]
}
