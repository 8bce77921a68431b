import type { IncomingMessage, ServerResponse } from 'node:http'
import { BridgeError } from './errors.js'
import type { Answer } from './idempotency.js'

/** One request, as an endpoint's handlers see it. */
export interface Exchange {
  readonly request: IncomingMessage
  readonly response: ServerResponse
  /** The path's `{name}` parts, percent-decoded. */
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams | undefined
  /** CORS headers of this request's answer (a stream writes its own head with them). */
  readonly cors: Record<string, string> | undefined
}

/** Answers a request; `undefined` when it wrote the response itself (a stream). */
export type EndpointHandler<T> = (exchange: Exchange, resolved: T) => Answer | undefined | Promise<Answer | undefined>

export type Method = 'GET' | 'HEAD' | 'POST' | 'DELETE'

export interface EndpointSpec<T> {
  /**
   * `/v1/topics/{topic}/batch`: `{name}` is one path segment (possibly empty); a last `{name*}`
   * is the rest of the path, slashes included. The path, `*` left out, is the route's name in
   * spans and metrics.
   */
  path: string
  /**
   * Runs before the method is checked, so that its refusals come first: an unauthenticated
   * caller gets 401 and an unknown id 404 whatever the method. Its result goes to the handler.
   */
  resolve?: (exchange: Exchange) => T | Promise<T>
  /** The handlers by method, in the order the Allow header lists them (HEAD is never listed). */
  methods: Partial<Record<Method, EndpointHandler<T>>>
  /** Answered whatever the bridge's phase (health checks); the others wait until it is ready. */
  beforeReady?: boolean
  /** A Server-Sent Events stream: the request timeout does not apply. */
  streams?: boolean
}

type Segment = { literal: string } | { param: string; rest: boolean }

/** An endpoint ready for the router. */
export interface Endpoint {
  /** The route's name in spans and metrics: `/v1/subscriptions/{id}`. */
  readonly route: string
  /** The Allow header of a 405. */
  readonly allow: string
  readonly beforeReady: boolean
  readonly streams: boolean
  /** Whether the bridge answers this path with this endpoint's resource (see `claims`). */
  claims(path: string): boolean
  /** The decoded params if the path is this endpoint's (400 INVALID_REQUEST for bad percent-encoding). */
  match(segments: readonly string[]): Record<string, string> | undefined
  resolve(exchange: Exchange): unknown
  handler(method: string | undefined): EndpointHandler<unknown> | undefined
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new BridgeError(400, 'INVALID_REQUEST', `malformed percent-encoding in ${JSON.stringify(segment)}`)
  }
}

function parsePattern(path: string): Segment[] {
  return path.split('/').map((part, i, all) => {
    const param = /^\{(\w+)(\*?)\}$/.exec(part)
    if (!param) return { literal: part }
    const rest = param[2] === '*'
    if (rest && i !== all.length - 1) throw new Error(`${path}: {name*} must come last`)
    return { param: param[1] as string, rest }
  })
}

export function defineEndpoint<T = undefined>(spec: EndpointSpec<T>): Endpoint {
  const segments = parsePattern(spec.path)
  const brace = spec.path.indexOf('{')
  // A path with parameters owns everything under its fixed part: /v1/topics/a/nothing is the
  // bridge's 404, not the next handler's.
  const prefix = brace === -1 ? undefined : spec.path.slice(0, brace)
  const handlers = new Map(Object.entries(spec.methods)) as Map<string, EndpointHandler<T>>
  return {
    route: spec.path.replaceAll('*}', '}'),
    allow: [...handlers.keys()].filter((m) => m !== 'HEAD').join(', '),
    beforeReady: spec.beforeReady ?? false,
    streams: spec.streams ?? false,
    claims: (path) => (prefix === undefined ? path === spec.path : path.startsWith(prefix)),
    match(parts) {
      const params: Record<string, string> = {}
      for (const [i, segment] of segments.entries()) {
        if (i >= parts.length) return undefined
        const part = parts[i] as string
        if ('literal' in segment) {
          if (part !== segment.literal) return undefined
        } else if (segment.rest) {
          params[segment.param] = decode(parts.slice(i).join('/'))
          return params
        } else params[segment.param] = decode(part)
      }
      return parts.length === segments.length ? params : undefined
    },
    resolve: (exchange) => spec.resolve?.(exchange),
    handler: (method) => (method === undefined ? undefined : (handlers.get(method) as EndpointHandler<unknown>)),
  }
}
