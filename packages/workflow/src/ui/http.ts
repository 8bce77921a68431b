/** The inspector's HTTP answers: JSON bodies, the error shape, and the headers every answer gets. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { WorkflowError } from '../errors.js'

/** Codes of the inspector's own HTTP errors; errors of the reader keep their WorkflowError code. */
export type InspectorErrorCode = 'INVALID_QUERY' | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' | 'TOO_MANY_STREAMS' | 'INTERNAL'

export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    readonly status: number,
    readonly code: InspectorErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/**
 * The page is ours alone: scripts and styles from its own files only (no inline code, so data
 * shown on it can never run), no framing, no referrer leaking instance ids elsewhere.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

const STATUS_OF: Partial<Record<string, number>> = {
  WORKFLOW_UNKNOWN_INSTANCE: 404,
  WORKFLOW_INVALID_OPTIONS: 400,
  WORKFLOW_STORE_UNAVAILABLE: 503,
  WORKFLOW_CLIENT_MISSING: 503,
  WORKFLOW_CLOSED: 503,
}

/** `{ status, error: { code, message } }` for an error thrown while answering. */
export function errorBody(error: unknown): { status: number; error: { code: string; message: string } } {
  if (error instanceof ApiError) return { status: error.status, error: { code: error.code, message: error.message } }
  if (WorkflowError.is(error))
    return { status: STATUS_OF[error.code] ?? 500, error: { code: error.code, message: error.message } }
  return { status: 500, error: { code: 'INTERNAL', message: 'internal error (see the server log)' } }
}

export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): void {
  const { status, error: body } = errorBody(error)
  if (res.headersSent) {
    res.end()
    return
  }
  sendJson(res, status, { error: body }, headers)
}

/** The path and query of a request, split without decoding (a malformed escape is the route's to reject). */
export function splitUrl(url: string): { path: string; search: string } {
  const q = url.indexOf('?')
  return q < 0 ? { path: url, search: '' } : { path: url.slice(0, q), search: url.slice(q + 1) }
}

/** Express keeps the URL before its mount point stripped it in `originalUrl`. */
export const originalUrl = (req: IncomingMessage): string =>
  (req as IncomingMessage & { originalUrl?: unknown }).originalUrl !== undefined
    ? String((req as IncomingMessage & { originalUrl?: unknown }).originalUrl)
    : (req.url ?? '/')
