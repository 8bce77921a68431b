import { createHmac, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { WebhookPolicy } from './ssrf.js'

/** Bytes of a response body kept for the error message; the rest is read and dropped. */
const SNIPPET_BYTES = 256
/** A larger response body is not read: the connection is dropped instead. */
const MAX_RESPONSE_BYTES = 65_536

export const SIGNATURE_HEADER = 'x-backplane-signature'

/** `sha256=<hex>`: the HMAC-SHA256 of the exact body bytes, keyed with the subscription's secret. */
export function signWebhookBody(secret: string, body: Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

/** For receivers: whether `header` (the X-Backplane-Signature value) signs `body` with `secret`. Constant time. */
export function verifyWebhookSignature(
  secret: string,
  body: Uint8Array | string,
  header: string | undefined | null,
): boolean {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false
  const expected = Buffer.from(signWebhookBody(secret, typeof body === 'string' ? Buffer.from(body) : body))
  const given = Buffer.from(header)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/**
 * `Retry-After` in ms: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent
 * or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!text) return undefined
  if (/^\d+$/.test(text)) return Number(text) * 1_000
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - now)
}

export interface WebhookResponse {
  status: number
  retryAfter: string | undefined
  /** The start of the response body, for error messages. */
  snippet: string
}

export interface WebhookCall {
  url: URL
  body: Uint8Array
  headers: Record<string, string>
  timeoutMs: number
  agent: http.Agent
  policy: WebhookPolicy
}

/** The URL without credentials, query or fragment: what logs and dead letters may show. */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}`
}

/**
 * One POST with node:http(s): no redirect is followed (a 3xx is just a failed status), the
 * connection goes only to an address the policy allows, the whole call (connect, send, answer)
 * is limited to `timeoutMs`.
 */
export function callWebhook(call: WebhookCall): Promise<WebhookResponse> {
  const { url } = call
  return new Promise((resolve, reject) => {
    try {
      call.policy.checkLiteral(url.hostname)
    } catch (error) {
      reject(error)
      return
    }
    const secure = url.protocol === 'https:'
    const options: https.RequestOptions = {
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: { ...call.headers, 'content-length': String(call.body.byteLength) },
      agent: call.agent,
      lookup: call.policy.lookup,
    }
    if (url.username !== '' || url.password !== '') {
      options.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    }
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finish = (error: Error | undefined, response?: WebhookResponse) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error) reject(error)
      else resolve(response as WebhookResponse)
    }
    let request: http.ClientRequest
    try {
      // Throws at once on a header value HTTP cannot carry: that must fail this call (retried,
      // then dead-lettered), not the process.
      request = (secure ? https : http).request(options, (response) => {
        const status = response.statusCode ?? 0
        const retryAfter = response.headers['retry-after']
        const chunks: Buffer[] = []
        let kept = 0
        let total = 0
        response.on('data', (chunk: Buffer) => {
          total += chunk.length
          if (kept < SNIPPET_BYTES) {
            chunks.push(chunk)
            kept += chunk.length
          }
          if (total > MAX_RESPONSE_BYTES) {
            response.destroy()
            done()
          }
        })
        const done = () =>
          finish(undefined, {
            status,
            retryAfter,
            snippet: Buffer.concat(chunks).toString('utf8', 0, SNIPPET_BYTES).replace(/\s+/g, ' ').trim(),
          })
        response.on('end', done)
        response.on('error', (error) => finish(error))
        response.on('aborted', () => finish(new Error('the answer was cut off')))
      })
    } catch (error) {
      finish(error as Error)
      return
    }
    timer = setTimeout(() => {
      request.destroy(Object.assign(new Error(`no answer within ${call.timeoutMs} ms`), { code: 'ETIMEDOUT' }))
    }, call.timeoutMs)
    request.on('error', (error) => finish(error))
    request.end(call.body)
  })
}
