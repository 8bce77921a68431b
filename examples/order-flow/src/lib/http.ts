// A few lines of routing for node:http, so the example shows the packages rather than a web
// framework. Every error is answered as JSON `{ error: { code, message, details } }`.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '@backplane/logging'
import type { z } from 'zod'

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: readonly string[],
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

export async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new HttpError(413, 'BODY_TOO_LARGE', `the body is over ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** The body parsed as JSON and checked against `schema`: 415, 400 with each bad field named. */
export async function readJson<S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected a JSON body (content-type: application/json)')
  let value: unknown
  try {
    value = JSON.parse((await readBody(req)).toString('utf8'))
  } catch (error) {
    if (error instanceof HttpError) throw error
    throw new HttpError(400, 'MALFORMED_JSON', `the body is not valid JSON: ${(error as Error).message}`)
  }
  return parse(schema, value, 'body')
}

export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const details = result.error.issues.map((i) => `${[what, ...i.path].join('.')}: ${i.message}`)
  throw new HttpError(400, 'INVALID_REQUEST', `invalid ${what}: ${details.join('; ')}`, details)
}

export interface Route {
  readonly method: string
  /** Template for logs and metrics ("/orders/:id"). */
  readonly route: string
  readonly handle: (
    req: IncomingMessage,
    res: ServerResponse,
    params: Record<string, string>,
    url: URL,
  ) => Promise<void>
}

export interface Router {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void
  /** The route template a request matches, for @backplane/logging's `route` option. */
  readonly routeOf: (req: { method?: string | undefined; url?: string | undefined }) => string | undefined
}

export interface RouterOptions {
  /** Maps errors of your own to HttpErrors; anything unmapped is answered 500 and logged. */
  readonly onError?: (error: unknown) => HttpError | undefined
  readonly log: Pick<Logger, 'error'>
}

export function createRouter(routes: readonly Route[], { onError = () => undefined, log }: RouterOptions): Router {
  const compiled = routes.map((r) => ({
    ...r,
    pattern: new RegExp(`^${r.route.replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`),
  }))
  const match = (req: { method?: string | undefined; url?: string | undefined }) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    const candidates = compiled.filter((r) => r.pattern.test(path))
    return { path, candidates, route: candidates.find((r) => r.method === req.method) }
  }
  return {
    routeOf: (req) => match(req).route?.route,
    handler: (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const { path, candidates, route } = match(req)
      const respond = (error: unknown) => {
        const mapped = error instanceof HttpError ? error : onError(error)
        const status = mapped?.status ?? 500
        const body = mapped
          ? { error: { code: mapped.code, message: mapped.message, details: mapped.details ?? [] } }
          : { error: { code: 'INTERNAL', message: 'internal error', details: [] } }
        if (!res.headersSent) sendJson(res, status, body)
        else res.end()
        if (!mapped) log.error({ err: error }, 'request failed')
      }
      if (!route) {
        respond(
          candidates.length > 0
            ? new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`)
            : new HttpError(404, 'NOT_FOUND', `no route for ${req.method} ${path}`),
        )
        return
      }
      const params = (route.pattern.exec(path)?.groups ?? {}) as Record<string, string>
      for (const key of Object.keys(params)) params[key] = decodeURIComponent(params[key] as string)
      route.handle(req, res, params, url).catch(respond)
    },
  }
}

/** Listens on 127.0.0.1 (port 0: any free port) and resolves with the base URL. */
export function listen(server: Server, port = 0, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(`http://${host}:${(server.address() as AddressInfo).port}`)
    })
  })
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
