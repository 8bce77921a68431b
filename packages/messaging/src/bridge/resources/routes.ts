import { forbidden, type Principal } from '../auth.js'
import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint, type Exchange } from '../endpoint.js'
import { BridgeError } from '../errors.js'
import { newId } from '../ids.js'
import { type RouteInput, routeInputSchema } from '../options.js'
import { findLoop, loopError } from '../routes.js'
import type { StoredRoute } from '../store.js'
import { checkDeadLetter } from '../topics.js'
import { readJsonInput } from './json-input.js'
import { refuseTaken, removeUnlessDeclared, startThenStore } from './managed.js'

export type RoutesContext = Pick<BridgeContext, 'options' | 'logger' | 'auth' | 'topics' | 'routes' | 'store' | 'start'>

/** `/v1/routes`: list and add cross-broker routes; `/v1/routes/{id}`: read, delete. */
export function routeEndpoints(ctx: RoutesContext): Endpoint[] {
  const { options, logger, auth, topics, routes, store, start } = ctx
  const authenticate = ({ request }: Exchange) => auth.authenticate(request, undefined)

  /** The route, if the caller may read its source: 404 either way, so ids do not leak. */
  function find(exchange: Exchange): { principal: Principal; id: string } {
    const principal = authenticate(exchange)
    const id = exchange.params.id as string
    const source = routes.sourceOf(id)
    if (source === undefined || !principal.canSubscribe(source))
      throw new BridgeError(404, 'NOT_FOUND', `no route ${JSON.stringify(id)}`)
    return { principal, id }
  }

  return [
    defineEndpoint({
      path: '/v1/routes',
      resolve: authenticate,
      methods: {
        GET: (_, principal) => ({
          status: 200,
          body: { routes: routes.list().filter((r) => topics.visible(principal, r.source)) },
        }),
        async POST({ request }, principal) {
          const input: RouteInput = await readJsonInput(request, routeInputSchema, options.limits)
          const source = topics.resolve(input.source, 'source')
          const destinations = input.destinations.map((d) => topics.resolve(d, 'destination'))
          if (!principal.canSubscribe(source)) throw forbidden(principal, 'subscribe to', source)
          for (const d of destinations) if (!principal.canPublish(d)) throw forbidden(principal, 'publish to', d)
          checkDeadLetter(input.deadLetter)
          const loop = findLoop([
            ...routes.edges(),
            { source: source.qualified, destinations: destinations.map((d) => d.qualified) },
          ])
          if (loop) throw loopError(loop)
          const routeId = input.id ?? newId('route')
          refuseTaken('route', routeId, routes)
          const stored: StoredRoute = { ...input, id: routeId, createdAt: new Date().toISOString() }
          await startThenStore(routeId, routes, {
            start: () => start.route(stored, 'api', 'new'),
            put: () => store.put('route', stored),
          })
          logger.info({ route: routeId, source: source.qualified, by: principal.id }, 'route added')
          return { status: 201, body: routes.view(routeId) }
        },
      },
    }),
    defineEndpoint({
      path: '/v1/routes/{id*}',
      resolve: find,
      methods: {
        GET: (_, { id }) => ({ status: 200, body: routes.view(id) }),
        async DELETE(_, { principal, id }) {
          await removeUnlessDeclared('route', id, routes, () => store.delete('route', id))
          logger.info({ route: id, by: principal.id }, 'route removed')
          return { status: 204, body: undefined }
        },
      },
    }),
  ]
}
