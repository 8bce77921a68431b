import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import {
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import type { Logger as PinoLogger } from 'pino'
import { instruments } from '../metrics.js'

const SCOPE = '@backplane/logging'
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE'])

export interface HttpLoggingOptions {
  /** The route template (`/orders/:id`) of a request, when the framework cannot tell. */
  route?: (request: { method?: string | undefined; url?: string | undefined }) => string | undefined
  /** Requests for which nothing is logged or measured (their trace context still applies). */
  ignore?: (request: { method?: string | undefined; url?: string | undefined }) => boolean
}

/** What the framework adapters know about one request. */
export interface RequestInfo {
  method: string | undefined
  url: string | undefined
  headers: IncomingHttpHeaders
  httpVersion?: string | undefined
  remoteAddress?: string | undefined
  encrypted?: boolean | undefined
}

/** One request's trace context, span and clock, from arrival to the completion line. */
export interface RequestScope {
  readonly context: Context
  readonly traceparent: string
  /** Records the response: ends the span, logs the completion line, records the duration. */
  finish(outcome: { status: number; route: string | undefined; aborted?: boolean; error?: unknown }): void
}

function normalizeMethod(method: string | undefined): string {
  const upper = (method ?? 'GET').toUpperCase()
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER'
}

function pathOf(url: string | undefined): string {
  if (!url) return '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * The server span of a request. With an SDK, a real span; without one the API hands back the
 * caller's span context unchanged, so a fresh span id (and a trace id when there is no caller)
 * is made here: every hop then still gets its own `span_id` in logs and in `traceparent`.
 */
function startServerSpan(name: string, parent: Context, attributes: Record<string, string | number>): Span {
  const span = trace.getTracer(SCOPE).startSpan(name, { kind: SpanKind.SERVER, attributes }, parent)
  const parentSpanContext = trace.getSpanContext(parent)
  const own = span.spanContext()
  const sdkMadeIt = trace.isSpanContextValid(own) && own.spanId !== parentSpanContext?.spanId
  if (sdkMadeIt) return span
  return trace.wrapSpanContext({
    traceId: parentSpanContext?.traceId ?? randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    traceFlags: parentSpanContext?.traceFlags ?? TraceFlags.SAMPLED,
  })
}

export function beginRequest(logger: PinoLogger, request: RequestInfo, options: HttpLoggingOptions): RequestScope {
  const started = process.hrtime.bigint()
  const method = normalizeMethod(request.method)
  const path = pathOf(request.url)
  const parent = propagation.extract(context.active(), request.headers)
  const attributes: Record<string, string | number> = {
    'http.request.method': method,
    'url.path': path,
    'url.scheme': request.encrypted ? 'https' : 'http',
  }
  if (request.httpVersion) attributes['network.protocol.version'] = request.httpVersion
  const userAgent = request.headers['user-agent']
  if (userAgent) attributes['user_agent.original'] = userAgent
  if (request.remoteAddress) attributes['client.address'] = request.remoteAddress
  const span = startServerSpan(method, parent, attributes)
  const requestContext = trace.setSpan(parent, span)
  const { traceId, spanId, traceFlags } = span.spanContext()
  const traceparent = `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`
  const ignored = options.ignore?.({ method: request.method, url: request.url }) ?? false
  let finished = false

  return {
    context: requestContext,
    traceparent,
    finish({ status, route, aborted, error }) {
      if (finished) return
      finished = true
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      const resolvedRoute = route ?? options.route?.({ method: request.method, url: request.url })
      span.updateName(resolvedRoute ? `${method} ${resolvedRoute}` : method)
      span.setAttribute('http.response.status_code', status)
      if (resolvedRoute) span.setAttribute('http.route', resolvedRoute)
      // 4xx is the client's doing and leaves the status unset, as the HTTP conventions say.
      if (status >= 500) {
        span.setAttribute('error.type', String(status))
        span.setStatus({ code: SpanStatusCode.ERROR })
      }
      if (error instanceof Error) span.recordException(error)
      span.end()
      if (ignored) return
      const metricAttributes: Record<string, string | number> = {
        'http.request.method': method,
        'url.scheme': attributes['url.scheme'] as string,
        'http.response.status_code': status,
      }
      if (resolvedRoute) metricAttributes['http.route'] = resolvedRoute
      if (status >= 500) metricAttributes['error.type'] = String(status)
      instruments().httpServerDuration.record(seconds, metricAttributes)
      const fields = {
        'http.request.method': method,
        'url.path': path,
        'http.route': resolvedRoute,
        'http.response.status_code': status,
        duration_ms: Math.round(seconds * 1e6) / 1e3,
        ...(error instanceof Error ? { err: error } : {}),
      }
      const message = aborted ? 'request aborted' : 'request completed'
      const level = status >= 500 ? 'error' : aborted || status >= 400 ? 'warn' : 'info'
      // The response events fire outside the request's async context: log inside it explicitly.
      context.with(requestContext, () => logger[level](fields, message))
    },
  }
}
