import http from 'node:http'
import { type Message, RetryAfterError } from '@backplane/messaging'
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { bridgeMetrics } from './metrics.js'
import type { WebhookPolicy } from './ssrf.js'
import { BRIDGE_TRACER, tracerRegistered } from './tracing.js'
import { callWebhook, parseRetryAfter, redactUrl, SIGNATURE_HEADER, signWebhookBody } from './webhook-client.js'
import { encodeHeaderValue } from './wire-rules.js'

/** A failed webhook call: what the dead letter's `backplane-dlq-error` says. */
export class WebhookDeliveryError extends Error {
  override readonly name = 'WebhookDeliveryError'
  readonly status: number | undefined
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
  }
}

/** Message headers never copied into a webhook call: hop-by-hop, credentials, what the bridge and the core set. */
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'authorization',
  'cookie',
  'set-cookie',
  'user-agent',
  SIGNATURE_HEADER,
  'x-backplane-subscription',
  'x-backplane-attempt',
  // The core's publish time for an event that came with its own `time`: the broker's bookkeeping.
  'backplane-published',
])

const USER_AGENT = 'backplane-bridge/1'

/** Node's refusals of a header value or name: the message cannot be sent, the endpoint is not to blame. */
const MESSAGE_FAULTS = new Set(['ERR_INVALID_CHAR', 'ERR_HTTP_INVALID_HEADER_VALUE', 'ERR_INVALID_HTTP_TOKEN'])

/**
 * The message's headers for the call. CloudEvents attributes go percent-encoded (HTTP binding
 * 3.1.3.2), so any Unicode value arrives intact; the bridge accepts no other header HTTP cannot
 * carry, so those dropped here came from another publisher on the broker.
 */
function forwardedHeaders(message: Message<unknown>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name in message.headers) {
    if (NOT_FORWARDED.has(name)) continue
    const given = message.headers[name] as string
    const value = name.startsWith('ce-') ? encodeHeaderValue(given) : given
    try {
      http.validateHeaderName(name)
      http.validateHeaderValue(name, value)
    } catch {
      continue // a broker header HTTP cannot carry (binary, control characters)
    }
    headers[name] = value
  }
  return headers
}

/** Where and how one subscription calls. */
export interface WebhookTarget {
  id: string
  url: URL
  secret: string | undefined
  agent: http.Agent
  policy: WebhookPolicy
  timeoutMs: number
  maxRetryAfter: number
}

/**
 * How a call ended. `endpointFault`: the endpoint is to blame (timeout, connection, 5xx, 408,
 * 429, redirect), which the breaker counts; otherwise (another 4xx) the message is.
 */
export type CallOutcome =
  | { kind: 'delivered' }
  | { kind: 'gone' }
  | { kind: 'failed'; error: Error; status: number | undefined; endpointFault: boolean; retryAfter: number | undefined }

function endpointFault(status: number): boolean {
  return status < 400 || status >= 500 || status === 408 || status === 429
}

/** One POST of the message to the target, in a CLIENT span continuing the message's trace. */
export async function callOnce(target: WebhookTarget, message: Message<Uint8Array>): Promise<CallOutcome> {
  const metrics = bridgeMetrics()
  const { id, url } = target
  const headers = forwardedHeaders(message)
  headers['content-type'] ??= 'application/octet-stream'
  headers['user-agent'] = USER_AGENT
  headers['x-backplane-subscription'] = id
  headers['x-backplane-attempt'] = String(message.attempt)
  if (message.key !== undefined) headers['ce-partitionkey'] ??= encodeHeaderValue(message.key)
  if (target.secret !== undefined) headers[SIGNATURE_HEADER] = signWebhookBody(target.secret, message.raw)

  // The handler runs in the message's trace (the core's process span): the call continues it.
  const active = context.active()
  const span = tracerRegistered()
    ? trace.getTracer(BRIDGE_TRACER).startSpan(
        'POST',
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': 'POST',
            'url.full': redactUrl(url),
            'server.address': url.hostname,
            'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
            'backplane.subscription.id': id,
          },
        },
        active,
      )
    : undefined
  propagation.inject(span ? trace.setSpan(active, span) : active, headers)

  const started = performance.now()
  let outcome: CallOutcome
  let status: number | undefined
  try {
    const response = await callWebhook({
      url,
      body: message.raw,
      headers,
      timeoutMs: target.timeoutMs,
      agent: target.agent,
      policy: target.policy,
    })
    status = response.status
    if (status >= 200 && status < 300) outcome = { kind: 'delivered' }
    else if (status === 410) outcome = { kind: 'gone' }
    else {
      const text = `POST ${redactUrl(url)} answered ${status}${response.snippet ? `: ${response.snippet}` : ''}`
      const asked = status === 429 || status === 503 ? parseRetryAfter(response.retryAfter) : undefined
      const retryAfter = asked === undefined ? undefined : Math.min(asked, target.maxRetryAfter)
      const error =
        retryAfter === undefined ? new WebhookDeliveryError(text, status) : new RetryAfterError(text, retryAfter)
      outcome = { kind: 'failed', error, status, endpointFault: endpointFault(status), retryAfter }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException)?.code
    outcome = {
      kind: 'failed',
      error: new WebhookDeliveryError(
        `POST ${redactUrl(url)} failed: ${(error as Error)?.message ?? error}`,
        undefined,
        {
          cause: error,
        },
      ),
      status: undefined,
      endpointFault: !(typeof code === 'string' && MESSAGE_FAULTS.has(code)),
      retryAfter: undefined,
    }
  }
  metrics.webhookCalls.add(1, { 'backplane.subscription.id': id, outcome: outcome.kind })
  metrics.webhookDuration.record((performance.now() - started) / 1000, { 'backplane.subscription.id': id })
  if (span) {
    if (status !== undefined) span.setAttribute('http.response.status_code', status)
    if (outcome.kind === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message })
    span.end()
  }
  return outcome
}
