import { forbidden } from '../auth.js'
import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint, type Exchange } from '../endpoint.js'
import { BridgeError } from '../errors.js'
import { sseGroup } from '../groups.js'
import { streamEvents } from '../sse.js'
import { subscribeFailure } from './subscribe-failure.js'

export type EventsContext = Pick<BridgeContext, 'options' | 'logger' | 'auth' | 'topics' | 'streams'>

/** `GET /v1/topics/{topic}/events`: the topic as a Server-Sent Events stream. */
export function eventsEndpoints(ctx: EventsContext): Endpoint[] {
  const { options, logger, auth, topics, streams } = ctx
  return [
    defineEndpoint({
      path: '/v1/topics/{topic}/events',
      streams: true,
      methods: {
        async GET({ request, response, params, query, cors }: Exchange) {
          const principal = auth.authenticate(request, query)
          const ref = topics.resolve(params.topic as string)
          if (!principal.canSubscribe(ref)) throw forbidden(principal, 'subscribe to', ref)
          const group = sseGroup(query?.get('group') ?? undefined)
          const from = query?.get('from') ?? 'latest'
          if (from !== 'latest' && from !== 'earliest') {
            throw new BridgeError(400, 'INVALID_REQUEST', 'from: expected "latest" or "earliest"')
          }
          const lastEventId = request.headers['last-event-id'] ?? query?.get('lastEventId') ?? undefined
          try {
            await streamEvents(request, response, {
              broker: topics.brokerOf(ref),
              ref,
              group,
              from,
              lastEventId: Array.isArray(lastEventId) ? lastEventId[0] : lastEventId,
              heartbeatMs: options.sse.heartbeat,
              resumeBuffer: options.sse.resumeBuffer,
              logger,
              headers: cors ?? {},
              register: (close) => {
                streams.add(close)
                return () => streams.delete(close)
              },
            })
          } catch (error) {
            throw subscribeFailure(error)
          }
          return undefined
        },
      },
    }),
  ]
}
