import type { IncomingMessage, ServerResponse } from 'node:http'
import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { BridgeContext } from './context.js'
import type { Endpoint, Exchange } from './endpoint.js'
import { BridgeError } from './errors.js'
import { sendError, sendJson } from './http.js'
import type { Answer } from './idempotency.js'
import { bridgeMetrics } from './metrics.js'
import { BRIDGE_TRACER, requestTraceContext, tracerRegistered } from './tracing.js'

export type Next = (error?: unknown) => void
export type RequestHandler = (request: IncomingMessage, response: ServerResponse, next?: Next) => void

export type RouterContext = Pick<BridgeContext, 'options' | 'logger' | 'lifecycle'>

/** The endpoint a request is for, as far as it is known: the router names the route after it. */
interface Found {
  /** The endpoint whose part of the path space it falls in (before the path is decoded). */
  readonly endpoint: Endpoint | undefined
  /** The endpoint that matched. */
  set(endpoint: Endpoint): void
}

function methodNotAllowed(allowed: string): BridgeError & { allow: string } {
  return Object.assign(
    new BridgeError(405, 'METHOD_NOT_ALLOWED', `this endpoint answers ${allowed.split(', ').join(' and ')}`),
    { allow: allowed },
  )
}

function corsPolicy(origins: readonly string[] | undefined) {
  const allowed = origins ? new Set(origins) : undefined
  return {
    enabled: allowed !== undefined,
    headers(request: IncomingMessage): Record<string, string> | undefined {
      if (!allowed) return undefined
      const origin = request.headers.origin
      if (origin === undefined) return undefined
      if (allowed.has('*')) return { 'access-control-allow-origin': '*' }
      if (!allowed.has(origin)) return undefined
      return { 'access-control-allow-origin': origin, vary: 'Origin' }
    },
  }
}

/**
 * The request listener: finds the endpoint of the path (404, 405 otherwise), answers CORS
 * preflights, and around each request keeps its span, its duration metric and its time limit.
 */
export function createRouter(ctx: RouterContext, endpoints: readonly Endpoint[]): RequestHandler {
  const { options, logger, lifecycle } = ctx
  const basePath = options.basePath
  const cors = corsPolicy(options.cors?.origins)

  /** The request's endpoint and params, once the bridge is ready (health checks excepted). */
  async function dispatch(exchange: Omit<Exchange, 'params'>, path: string, found: Found): Promise<Answer | undefined> {
    if (!found.endpoint?.beforeReady) await lifecycle.whenReady()
    const parts = path.split('/')
    for (const endpoint of endpoints) {
      const params = endpoint.match(parts)
      if (params === undefined) continue
      found.set(endpoint)
      const full: Exchange = { ...exchange, params }
      const resolved = await endpoint.resolve(full)
      const handler = endpoint.handler(exchange.request.method)
      if (!handler) throw methodNotAllowed(endpoint.allow)
      return handler(full, resolved)
    }
    throw new BridgeError(404, 'NOT_FOUND', `no endpoint ${path}`)
  }

  return function handler(request, response, next) {
    const started = performance.now()
    let url = request.url ?? '/'
    if (basePath !== undefined) {
      if (url === basePath || url.startsWith(`${basePath}/`) || url.startsWith(`${basePath}?`))
        url = url.slice(basePath.length) || '/'
      else if (next) {
        next()
        return
      }
    }
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const query = q === -1 ? undefined : new URLSearchParams(url.slice(q + 1))
    const claimant = endpoints.find((e) => e.claims(path))
    if (claimant === undefined && next) {
      next()
      return
    }
    let route = claimant?.route ?? path
    const corsHeaders = cors.headers(request)
    const method = request.method ?? 'GET'

    if (method === 'OPTIONS' && cors.enabled) {
      response.writeHead(204, {
        ...(corsHeaders ?? {}),
        'access-control-allow-methods': 'GET, POST, DELETE',
        'access-control-allow-headers':
          request.headers['access-control-request-headers'] ?? 'authorization, content-type',
        'access-control-max-age': '600',
      })
      response.end()
      return
    }

    const parent = requestTraceContext(request.headers)
    let span: Span | undefined
    const spanName = () => `${method} ${route}`
    if (tracerRegistered()) {
      span = trace
        .getTracer(BRIDGE_TRACER)
        .startSpan(
          spanName(),
          { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
          parent,
        )
    }
    const traceContext = span ? trace.setSpan(parent, span) : parent
    let timer: NodeJS.Timeout | undefined

    let finished = false
    const finish = (status: number) => {
      if (finished) return
      finished = true
      if (timer) clearTimeout(timer)
      const attributes = { 'http.request.method': method, 'http.route': route, 'http.response.status_code': status }
      bridgeMetrics().requests.record((performance.now() - started) / 1000, attributes)
      if (span) {
        span.updateName(spanName())
        span.setAttribute('http.route', route)
        span.setAttribute('http.response.status_code', status)
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
      }
    }
    const fail = (error: unknown) => {
      let e: BridgeError
      if (BridgeError.is(error)) e = error
      else {
        logger.error({ err: (error as Error)?.stack ?? String(error), path }, 'bridge request failed')
        e = new BridgeError(500, 'INTERNAL', 'internal error: the bridge logged the details')
      }
      if (response.headersSent) {
        response.end()
        finish(e.status)
        return
      }
      const headers: Record<string, string> = { ...(corsHeaders ?? {}) }
      if (e.status === 405) headers.allow = (e as BridgeError & { allow?: string }).allow ?? ''
      if (e.status === 401) headers['www-authenticate'] = 'Bearer'
      // The rest of the body is not read: the connection cannot carry another request.
      if (e.status === 413 || e.status === 408) headers.connection = 'close'
      if (lifecycle.phase === 'closing') headers.connection = 'close'
      sendError(response, e, headers)
      finish(e.status)
    }

    let streaming = false
    const found: Found = {
      endpoint: claimant,
      set(endpoint) {
        route = endpoint.route
        if (endpoint.streams) streaming = true
      },
    }
    const work = context.with(traceContext, () =>
      dispatch({ request, response, query, cors: corsHeaders }, path, found),
    )
    const limit = options.limits.requestTimeout
    timer = setTimeout(() => {
      if (streaming || response.headersSent) return
      const reading = !request.readableEnded
      fail(
        reading
          ? new BridgeError(
              408,
              'REQUEST_TIMEOUT',
              `the request was not received within ${limit} ms (limits.requestTimeout)`,
            )
          : new BridgeError(
              504,
              'PUBLISH_TIMEOUT',
              `no answer from the broker within ${limit} ms: the outcome is unknown; retry with the same Idempotency-Key to publish at most once`,
            ),
      )
    }, limit)
    work.then((answer) => {
      if (answer === undefined) {
        finish(response.statusCode)
        return
      }
      if (response.headersSent) return
      if (answer.status === 204 || method === 'HEAD') {
        response.writeHead(answer.status, corsHeaders ?? {})
        response.end()
      } else sendJson(response, answer.status, answer.body, corsHeaders)
      finish(answer.status)
    }, fail)
  }
}
