import type { IncomingMessage } from 'node:http'
import { forbidden } from '../auth.js'
import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint, type Exchange } from '../endpoint.js'
import { readBody } from '../http.js'
import { type PublishContext, publishBatch, publishOne } from '../publish.js'

export type PublishResourceContext = Pick<BridgeContext, 'options' | 'auth' | 'topics' | 'idempotency'>

/** `POST /v1/topics/{topic}` (one message) and `POST /v1/topics/{topic}/batch`. */
export function publishEndpoints(ctx: PublishResourceContext): Endpoint[] {
  const { options, auth, topics, idempotency } = ctx

  /** The caller may publish to the topic: its body, and what publishing needs. */
  async function admit(request: IncomingMessage, topicText: string): Promise<[PublishContext, Buffer]> {
    const principal = auth.authenticate(request, undefined)
    const ref = topics.resolve(topicText)
    if (!principal.canPublish(ref)) throw forbidden(principal, 'publish to', ref)
    const body = await readBody(request, options.limits.bodyBytes)
    const publish: PublishContext = {
      broker: topics.brokerOf(ref),
      ref,
      source: options.source,
      principal: principal.id,
      idempotency,
      batchLimit: options.limits.batchMessages,
      jsonDepth: options.limits.jsonDepth,
    }
    return [publish, body]
  }

  return [
    defineEndpoint({
      path: '/v1/topics/{topic}',
      methods: {
        async POST({ request, params, query }: Exchange) {
          const [publish, body] = await admit(request, params.topic as string)
          return publishOne(publish, request, body, query)
        },
      },
    }),
    defineEndpoint({
      path: '/v1/topics/{topic}/batch',
      methods: {
        async POST({ request, params }: Exchange) {
          const [publish, body] = await admit(request, params.topic as string)
          return publishBatch(publish, request, body)
        },
      },
    }),
  ]
}
