import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { context } from '@opentelemetry/api'
import type { Logger as PinoLogger } from 'pino'
import { beginRequest, type HttpLoggingOptions } from './request-context.js'

type Next = (error?: unknown) => void
type ExpressLikeRequest = IncomingMessage & { baseUrl?: string; route?: { path?: unknown } }

/** The route template Express matched (`/orders/:id`), once its router has run. */
function expressRoute(request: ExpressLikeRequest): string | undefined {
  const path = request.route?.path
  return typeof path === 'string' ? `${request.baseUrl ?? ''}${path}` : undefined
}

/**
 * Middleware for node:http and Express (`app.use(httpLogging(log))`): runs the rest of the
 * request in its trace context, answers with `traceparent`, and logs one line when it ends.
 */
export function httpLogging(
  logger: PinoLogger,
  options: HttpLoggingOptions = {},
): (request: IncomingMessage, response: ServerResponse, next: Next) => void {
  return (request, response, next) => {
    const scope = beginRequest(
      logger,
      {
        method: request.method,
        url: request.url,
        headers: request.headers,
        httpVersion: request.httpVersion,
        remoteAddress: request.socket?.remoteAddress,
        encrypted: (request.socket as TLSSocket | undefined)?.encrypted,
      },
      options,
    )
    if (!response.headersSent) response.setHeader('traceparent', scope.traceparent)
    const done = () => {
      response.off('finish', done)
      response.off('close', done)
      scope.finish({
        status: response.statusCode,
        route: expressRoute(request as ExpressLikeRequest),
        aborted: !response.writableFinished,
      })
    }
    response.on('finish', done)
    response.on('close', done)
    context.with(scope.context, next)
  }
}

/** Wraps a node:http request listener: `http.createServer(withHttpLogging(log, handler))`. */
export function withHttpLogging(
  logger: PinoLogger,
  listener: (request: IncomingMessage, response: ServerResponse) => unknown,
  options: HttpLoggingOptions = {},
): (request: IncomingMessage, response: ServerResponse) => void {
  const middleware = httpLogging(logger, options)
  return (request, response) => {
    middleware(request, response, (error?: unknown) => {
      if (error !== undefined) {
        response.statusCode = 500
        response.end()
        return
      }
      const result = listener(request, response)
      if (result instanceof Promise) {
        result.catch((failure: unknown) => {
          logger.error({ err: failure }, 'request handler failed')
          if (!response.headersSent) response.statusCode = 500
          response.end()
        })
      }
    })
  }
}
