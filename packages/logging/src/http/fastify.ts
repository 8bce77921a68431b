import { type Context, context } from '@opentelemetry/api'
import type { Logger as PinoLogger } from 'pino'
import { beginRequest, type HttpLoggingOptions, type RequestScope } from './request-context.js'

// Structural types: this package does not depend on fastify.
interface FastifyRequestLike {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
  raw: { httpVersion?: string; socket?: { remoteAddress?: string; encrypted?: boolean } }
  routeOptions?: { url?: string }
}
interface FastifyReplyLike {
  statusCode: number
  header(name: string, value: string): unknown
  raw: { writableFinished: boolean }
}
type HookDone = (error?: Error) => void
type Handler = (this: unknown, request: FastifyRequestLike, reply: FastifyReplyLike) => unknown
interface FastifyInstanceLike {
  addHook(
    name: 'onRequest',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: HookDone) => void,
  ): unknown
  addHook(
    name: 'onResponse',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: HookDone) => void,
  ): unknown
  addHook(name: 'onRequestAbort', hook: (request: FastifyRequestLike, done: HookDone) => void): unknown
  addHook(name: 'onRoute', hook: (route: { handler: Handler }) => void): unknown
}

const scopes = new WeakMap<object, RequestScope>()

function contextOf(request: FastifyRequestLike): Context {
  return scopes.get(request)?.context ?? context.active()
}

/**
 * Fastify plugin: `await app.register(fastifyLogging(log))` before the routes. Route handlers
 * run in the request's trace context even after Fastify has parsed the body (which happens
 * outside of it), the reply carries `traceparent`, and one line is logged per request.
 */
export function fastifyLogging(logger: PinoLogger, options: HttpLoggingOptions = {}) {
  // Typed loosely on purpose: a Fastify instance (of any version and type provider) must be
  // assignable to it, which the precise hook overloads above would not allow.
  const plugin = (instance: { addHook(...args: never[]): unknown }, _opts: unknown, done: HookDone) => {
    const fastify = instance as unknown as FastifyInstanceLike
    fastify.addHook('onRoute', (route) => {
      const handler = route.handler
      route.handler = function (this: unknown, request, reply) {
        return context.with(contextOf(request), () => handler.call(this, request, reply))
      }
    })
    fastify.addHook('onRequest', (request, reply, next) => {
      const scope = beginRequest(
        logger,
        {
          method: request.method,
          url: request.url,
          headers: request.headers,
          httpVersion: request.raw.httpVersion,
          remoteAddress: request.raw.socket?.remoteAddress,
          encrypted: request.raw.socket?.encrypted,
        },
        options,
      )
      scopes.set(request, scope)
      reply.header('traceparent', scope.traceparent)
      context.with(scope.context, () => next())
    })
    fastify.addHook('onResponse', (request, reply, next) => {
      scopes.get(request)?.finish({ status: reply.statusCode, route: request.routeOptions?.url })
      next()
    })
    fastify.addHook('onRequestAbort', (request, next) => {
      scopes.get(request)?.finish({ status: 499, route: request.routeOptions?.url, aborted: true })
      next()
    })
    done()
  }
  // Fastify's own marker (what fastify-plugin sets): the hooks apply to the whole app, not only
  // inside this plugin's encapsulated context.
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: '@backplane/logging',
  })
}
