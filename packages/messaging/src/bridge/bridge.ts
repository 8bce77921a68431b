import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Broker, createBroker, MessagingError, silentLogger } from '@backplane/messaging'
import { type Context, context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { z } from 'zod'
import { tracerRegistered } from '../telemetry.js'
import { createAuthenticator, forbidden, type Principal } from './auth.js'
import { BridgeError, issueLines } from './errors.js'
import { type EtcdStoreOptions, etcdStore } from './etcd-store.js'
import { sseGroup } from './groups.js'
import { isJsonType, mediaType, parseJson, readBody, sendError, sendJson } from './http.js'
import { type Answer, IdempotencyCache } from './idempotency.js'
import { bridgeMetrics } from './metrics.js'
import {
  type BridgeOptions,
  parseBridgeOptions,
  type ResolvedBridgeOptions,
  type RouteInput,
  routeInputSchema,
  type SubscriptionInput,
  subscriptionInputSchema,
} from './options.js'
import { type PublishContext, publishBatch, publishOne } from './publish.js'
import { findLoop, loopError, RouteManager } from './routes.js'
import { streamEvents } from './sse.js'
import { createWebhookPolicy } from './ssrf.js'
import {
  type BridgeStore,
  fileStore,
  memoryStore,
  type StoreChange,
  type StoredRoute,
  type StoredSubscription,
} from './store.js'
import { checkTopicName, parseTopicRef, type TopicMatcher, type TopicRef, topicMatcher } from './topics.js'
import { WebhookManager } from './webhooks.js'

type Next = (error?: unknown) => void

export interface Bridge {
  /**
   * The request listener: `http.createServer(bridge.handler)`, `app.use('/bridge', bridge.handler)`
   * (Express), or from a Fastify route with `reply.hijack()`. With `next`, requests for paths the
   * bridge does not serve go on to it instead of getting a 404.
   */
  handler(request: IncomingMessage, response: ServerResponse, next?: Next): void
  /** Resolves once the brokers are connected, the store is loaded and subscriptions and routes are started. */
  readonly ready: Promise<void>
  /** The connected brokers, by name (after `ready`). */
  readonly brokers: ReadonlyMap<string, Broker>
  /** Ends SSE streams, stops subscriptions and routes (in-flight deliveries finish), closes the brokers it opened. */
  close(): Promise<void>
}

type Phase = 'starting' | 'ready' | 'failed' | 'closing'

const ROUTE = {
  health: '/healthz',
  ready: '/readyz',
  publish: '/v1/topics/{topic}',
  batch: '/v1/topics/{topic}/batch',
  events: '/v1/topics/{topic}/events',
  subscriptions: '/v1/subscriptions',
  subscription: '/v1/subscriptions/{id}',
  routes: '/v1/routes',
  route: '/v1/routes/{id}',
} as const

function configId(kind: string, ...parts: (string | undefined)[]): string {
  return `${kind}-${createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\u0000'))
    .digest('hex')
    .slice(0, 12)}`
}

function newId(kind: 'sub' | 'route'): string {
  return `${kind}_${randomBytes(9).toString('base64url')}`
}

function resolveStore(options: ResolvedBridgeOptions): BridgeStore {
  const store = options.store
  if (store === false) return memoryStore()
  if ('file' in store && typeof store.file === 'string') return fileStore(store.file)
  if ('etcd' in store && typeof store.etcd === 'object') {
    return etcdStore({ ...(store.etcd as EtcdStoreOptions), logger: options.logger })
  }
  return store as BridgeStore
}

function methodNotAllowed(allowed: string): BridgeError & { allow: string } {
  return Object.assign(
    new BridgeError(405, 'METHOD_NOT_ALLOWED', `this endpoint answers ${allowed.split(', ').join(' and ')}`),
    { allow: allowed },
  )
}

function requireJson(request: IncomingMessage): void {
  const type = mediaType(request)
  if (type === undefined || !isJsonType(type)) {
    throw new BridgeError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `expected Content-Type: application/json, got ${type ?? 'none'}`,
    )
  }
}

function validate<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const details = issueLines(result.error.issues)
  throw new BridgeError(400, 'INVALID_REQUEST', `invalid request: ${details.join('; ')}`, { details })
}

/** Subscribing failed: a refusal that another try will not change is the caller's to fix. */
function subscribeFailure(error: unknown): BridgeError {
  if (BridgeError.is(error)) return error
  if (
    MessagingError.is(error) &&
    (error.code === 'MESSAGING_UNSUPPORTED' || error.code === 'MESSAGING_INVALID_OPTIONS')
  ) {
    return new BridgeError(400, 'INVALID_REQUEST', error.message, { details: error.details })
  }
  return new BridgeError(
    503,
    'BROKER_UNAVAILABLE',
    `the broker refused the subscription: ${(error as Error)?.message ?? error}`,
    {
      cause: error,
    },
  )
}

/**
 * The HTTP bridge: publish over HTTP, push to webhooks, stream as Server-Sent Events, route
 * between brokers. See the README's "HTTP bridge" section.
 */
export function createBridge(input: BridgeOptions): Bridge {
  const options = parseBridgeOptions(input)
  const logger = options.logger ?? silentLogger
  const auth = createAuthenticator(options)
  const policy = createWebhookPolicy(options.webhooks.allow)
  const allowlist: TopicMatcher | undefined = options.topics ? topicMatcher(options.topics) : undefined
  const brokerNames = Object.keys(options.brokers)
  const defaultBroker = options.defaultBroker ?? (brokerNames[0] as string)
  const brokers = new Map<string, Broker>()
  const names = new Map<string, true>(brokerNames.map((n) => [n, true]))
  const owned: Broker[] = []
  const idempotency = new IdempotencyCache(options.idempotency)
  const store = resolveStore(options)
  const basePath = options.basePath
  const corsOrigins = options.cors ? new Set(options.cors.origins) : undefined
  const streams = new Set<() => void>()
  let phase: Phase = 'starting'
  let failure: BridgeError | undefined

  const webhooks = new WebhookManager({
    settings: options.webhooks,
    policy,
    logger,
    onGone: (id) => {
      const origin = webhooks.origin(id)
      void webhooks
        .stop(id)
        .then(async () => {
          if (origin === 'api') await store.delete('subscription', id)
          else
            logger.warn(
              { subscription: id },
              'declared in the config: remove it there, or it comes back at the next start',
            )
        })
        .catch((error: unknown) =>
          logger.error({ subscription: id, err: (error as Error)?.message }, 'could not remove the subscription'),
        )
    },
  })
  const routes = new RouteManager({ settings: options.routing, logger })

  function topicRef(text: string, what = 'topic'): TopicRef {
    const ref = parseTopicRef(text, names, defaultBroker, what)
    if (allowlist && !allowlist(ref)) {
      throw new BridgeError(404, 'UNKNOWN_TOPIC', `${what} ${ref.qualified} is not in the bridge's topic allowlist`)
    }
    return ref
  }

  function brokerOf(ref: TopicRef): Broker {
    const broker = brokers.get(ref.broker)
    if (!broker) throw new BridgeError(503, 'NOT_READY', `broker ${ref.broker} is not connected yet`)
    return broker
  }

  function checkDeadLetter(deadLetter: string | false | undefined): void {
    if (typeof deadLetter === 'string') checkTopicName(deadLetter, 'deadLetter')
  }

  // Declared in the config: checked now, so a bad config fails createBridge, not the first request.
  const declaredSubscriptions: StoredSubscription[] = []
  const declaredRoutes: StoredRoute[] = []
  const configErrors: string[] = []
  options.subscriptions.forEach((s, i) => {
    try {
      topicRef(s.topic)
      policy.checkStatic(s.url)
      checkDeadLetter(s.deadLetter)
      const id = s.id ?? configId('cfg', s.topic, s.url, s.group)
      if (declaredSubscriptions.some((d) => d.id === id)) throw new Error(`id ${id} is used twice`)
      declaredSubscriptions.push({ ...s, id, createdAt: new Date(0).toISOString() })
    } catch (error) {
      configErrors.push(`subscriptions[${i}]: ${(error as Error).message}`)
    }
  })
  options.routes.forEach((r, i) => {
    try {
      const source = topicRef(r.source, 'source')
      const destinations = r.destinations.map((d) => topicRef(d, 'destination'))
      if (destinations.some((d) => d.qualified === source.qualified))
        throw new Error('a route cannot write to its own source')
      checkDeadLetter(r.deadLetter)
      const id = r.id ?? configId('cfg', r.source, ...r.destinations)
      if (declaredRoutes.some((d) => d.id === id)) throw new Error(`id ${id} is used twice`)
      declaredRoutes.push({ ...r, id, createdAt: new Date(0).toISOString() })
    } catch (error) {
      configErrors.push(`routes[${i}]: ${(error as Error).message}`)
    }
  })
  const qualify = (r: StoredRoute) => ({
    source: parseTopicRef(r.source, names, defaultBroker).qualified,
    destinations: r.destinations.map((d) => parseTopicRef(d, names, defaultBroker).qualified),
  })
  if (configErrors.length === 0) {
    const loop = findLoop(declaredRoutes.map(qualify))
    if (loop) configErrors.push(`routes: they make a loop: ${loop.join(' → ')}`)
  }
  if (configErrors.length > 0) {
    throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `invalid bridge options: ${configErrors.join('; ')}`, {
      details: configErrors,
    })
  }

  /** `new`: added now (fails if the broker refuses); `first`/`again`: loaded at start, first time or after a restart. */
  type StartMode = 'new' | 'first' | 'again'

  function startSubscription(stored: StoredSubscription, origin: 'config' | 'api', mode: StartMode): Promise<void> {
    const ref = topicRef(stored.topic)
    const url = policy.checkStatic(stored.url)
    const broker = brokerOf(ref)
    return mode === 'new'
      ? webhooks.start(stored, origin, ref, broker, url)
      : webhooks.startInBackground(stored, origin, ref, broker, url, mode === 'again')
  }

  function startRoute(stored: StoredRoute, origin: 'config' | 'api', mode: StartMode): Promise<void> {
    const source = topicRef(stored.source, 'source')
    const targets = stored.destinations.map((d) => {
      const ref = topicRef(d, 'destination')
      return { ref, broker: brokerOf(ref) }
    })
    const broker = brokerOf(source)
    return mode === 'new'
      ? routes.start(stored, origin, source, broker, targets)
      : routes.startInBackground(stored, origin, source, broker, targets, mode === 'again')
  }

  /** A change another bridge made to the shared store. */
  function applyChange(change: StoreChange): void {
    if (phase === 'closing') return
    const declared =
      change.kind === 'subscription'
        ? declaredSubscriptions.some((d) => d.id === change.id)
        : declaredRoutes.some((d) => d.id === change.id)
    if (declared || change.item?.origin === 'config') return
    const run = async () => {
      if (change.kind === 'subscription') {
        if (webhooks.has(change.id)) await webhooks.stop(change.id)
        if (change.item) await startSubscription(change.item, 'api', 'again')
      } else {
        if (routes.has(change.id)) await routes.stop(change.id)
        if (change.item) await startRoute(change.item, 'api', 'again')
      }
      logger.info({ kind: change.kind, id: change.id, removed: change.item === undefined }, 'bridge store changed')
    }
    run().catch((error: unknown) =>
      logger.error(
        { kind: change.kind, id: change.id, err: (error as Error)?.message },
        'could not apply a store change',
      ),
    )
  }

  const ready = (async () => {
    for (const [name, target] of Object.entries(options.brokers)) {
      if (typeof target === 'string' || !('publish' in target)) {
        const { url, ...settings } = typeof target === 'string' ? { url: target } : target
        const broker = await createBroker(url, {
          source: options.source,
          ...(options.logger ? { logger: options.logger } : {}),
          ...settings,
        })
        owned.push(broker)
        brokers.set(name, broker)
      } else {
        brokers.set(name, target)
      }
    }
    store.watch?.(applyChange)
    const state = await store.load()
    const starts: Promise<void>[] = []
    // Declared items keep a copy in the store for their creation time: a restart then resumes
    // them like the others (see WebhookManager.startInBackground).
    const now = new Date().toISOString()
    const declared = async <T extends StoredSubscription | StoredRoute>(
      kind: 'subscription' | 'route',
      items: T[],
      stored: T[],
      start: (item: T, mode: StartMode) => Promise<void>,
    ) => {
      for (const item of items) {
        const previous = stored.find((s) => s.id === item.id)
        if (previous !== undefined && previous.origin !== 'config') {
          logger.warn(
            { kind, id: item.id },
            'an item added at run time has the id of one in the config: the config wins',
          )
        }
        const again = previous?.origin === 'config'
        item.createdAt = again ? previous.createdAt : now
        const copy = { ...item, origin: 'config' as const }
        if (JSON.stringify(copy) !== JSON.stringify(previous)) {
          await (kind === 'subscription'
            ? store.put('subscription', copy as StoredSubscription)
            : store.put('route', copy as StoredRoute))
        }
        starts.push(start(item, again ? 'again' : 'first'))
      }
      for (const old of stored) {
        if (old.origin === 'config' && !items.some((i) => i.id === old.id)) await store.delete(kind, old.id)
      }
    }
    await declared('subscription', declaredSubscriptions, state.subscriptions, (s, mode) =>
      startSubscription(s, 'config', mode),
    )
    await declared('route', declaredRoutes, state.routes, (r, mode) => startRoute(r, 'config', mode))
    for (const s of state.subscriptions) {
      if (s.origin === 'config' || declaredSubscriptions.some((d) => d.id === s.id)) continue
      try {
        starts.push(startSubscription(s, 'api', 'again'))
      } catch (error) {
        logger.error(
          { subscription: s.id, err: (error as Error).message },
          'stored subscription is no longer valid: skipped',
        )
      }
    }
    for (const r of state.routes) {
      if (r.origin === 'config' || declaredRoutes.some((d) => d.id === r.id)) continue
      try {
        starts.push(startRoute(r, 'api', 'again'))
      } catch (error) {
        logger.error({ route: r.id, err: (error as Error).message }, 'stored route is no longer valid: skipped')
      }
    }
    await Promise.all(starts)
    if (phase === 'starting') phase = 'ready'
    logger.info({ brokers: brokerNames, subscriptions: webhooks.size, routes: routes.size }, 'bridge ready')
  })().catch((error: unknown) => {
    if (phase === 'starting') phase = 'failed'
    failure = BridgeError.is(error)
      ? error
      : new BridgeError(503, 'NOT_READY', `the bridge could not start: ${(error as Error)?.message ?? error}`, {
          cause: error,
        })
    logger.error({ err: failure.message }, 'bridge failed to start')
    throw failure
  })
  ready.catch(() => {}) // the caller may never await it; requests report the failure

  // ---------------------------------------------------------------- request handling

  async function whenReady(): Promise<void> {
    if (phase === 'ready') return
    if (phase === 'closing') throw new BridgeError(503, 'SHUTTING_DOWN', 'the bridge is shutting down')
    if (phase === 'failed') throw failure as BridgeError
    await ready
  }

  function publishContext(ref: TopicRef, principal: Principal): PublishContext {
    return {
      broker: brokerOf(ref),
      ref,
      source: options.source,
      principal: principal.id,
      idempotency,
      batchLimit: options.limits.batchMessages,
      jsonDepth: options.limits.jsonDepth,
    }
  }

  async function handleSubscriptions(
    request: IncomingMessage,
    principal: Principal,
    id: string | undefined,
  ): Promise<Answer> {
    const method = request.method
    if (id === undefined) {
      if (method === 'GET') {
        return {
          status: 200,
          body: { subscriptions: webhooks.list().filter((s) => visible(principal, s.topic)) },
        }
      }
      if (method !== 'POST') throw methodNotAllowed('GET, POST')
      requireJson(request)
      const input: SubscriptionInput = validate(
        subscriptionInputSchema,
        parseJson(await readBody(request, options.limits.bodyBytes), options.limits.jsonDepth),
      )
      const ref = topicRef(input.topic)
      if (!principal.canSubscribe(ref)) throw forbidden(principal, 'subscribe to', ref)
      checkDeadLetter(input.deadLetter)
      await policy.check(input.url)
      const subscriptionId = input.id ?? newId('sub')
      if (webhooks.has(subscriptionId)) {
        throw new BridgeError(
          409,
          'ALREADY_EXISTS',
          `subscription ${subscriptionId} exists: delete it first, or use another id`,
        )
      }
      const stored: StoredSubscription = { ...input, id: subscriptionId, createdAt: new Date().toISOString() }
      try {
        await startSubscription(stored, 'api', 'new')
      } catch (error) {
        throw subscribeFailure(error)
      }
      try {
        await store.put('subscription', stored)
      } catch (error) {
        await webhooks.stop(subscriptionId)
        throw BridgeError.is(error) ? error : new BridgeError(503, 'STORE_FAILED', String(error))
      }
      logger.info({ subscription: subscriptionId, topic: ref.qualified, by: principal.id }, 'subscription added')
      return { status: 201, body: webhooks.view(subscriptionId) }
    }
    const ref = webhooks.topicOf(id)
    if (ref === undefined || !principal.canSubscribe(ref)) {
      throw new BridgeError(404, 'NOT_FOUND', `no subscription ${JSON.stringify(id)}`)
    }
    if (method === 'GET') return { status: 200, body: webhooks.view(id) }
    if (method !== 'DELETE') throw methodNotAllowed('GET, DELETE')
    if (webhooks.origin(id) === 'config') {
      throw new BridgeError(
        409,
        'DECLARED_IN_CONFIG',
        `subscription ${id} is declared in the config file: remove it there`,
      )
    }
    await webhooks.stop(id)
    await store.delete('subscription', id)
    logger.info({ subscription: id, by: principal.id }, 'subscription removed')
    return { status: 204, body: undefined }
  }

  function visible(principal: Principal, topic: string): boolean {
    try {
      return principal.canSubscribe(parseTopicRef(topic, names, defaultBroker))
    } catch {
      return false
    }
  }

  async function handleRoutes(request: IncomingMessage, principal: Principal, id: string | undefined): Promise<Answer> {
    const method = request.method
    if (id === undefined) {
      if (method === 'GET')
        return { status: 200, body: { routes: routes.list().filter((r) => visible(principal, r.source)) } }
      if (method !== 'POST') throw methodNotAllowed('GET, POST')
      requireJson(request)
      const input: RouteInput = validate(
        routeInputSchema,
        parseJson(await readBody(request, options.limits.bodyBytes), options.limits.jsonDepth),
      )
      const source = topicRef(input.source, 'source')
      const destinations = input.destinations.map((d) => topicRef(d, 'destination'))
      if (!principal.canSubscribe(source)) throw forbidden(principal, 'subscribe to', source)
      for (const d of destinations) if (!principal.canPublish(d)) throw forbidden(principal, 'publish to', d)
      checkDeadLetter(input.deadLetter)
      const loop = findLoop([
        ...routes.edges(),
        { source: source.qualified, destinations: destinations.map((d) => d.qualified) },
      ])
      if (loop) throw loopError(loop)
      const routeId = input.id ?? newId('route')
      if (routes.has(routeId))
        throw new BridgeError(409, 'ALREADY_EXISTS', `route ${routeId} exists: delete it first, or use another id`)
      const stored: StoredRoute = { ...input, id: routeId, createdAt: new Date().toISOString() }
      try {
        await startRoute(stored, 'api', 'new')
      } catch (error) {
        throw subscribeFailure(error)
      }
      try {
        await store.put('route', stored)
      } catch (error) {
        await routes.stop(routeId)
        throw BridgeError.is(error) ? error : new BridgeError(503, 'STORE_FAILED', String(error))
      }
      logger.info({ route: routeId, source: source.qualified, by: principal.id }, 'route added')
      return { status: 201, body: routes.view(routeId) }
    }
    const source = routes.sourceOf(id)
    if (source === undefined || !principal.canSubscribe(source))
      throw new BridgeError(404, 'NOT_FOUND', `no route ${JSON.stringify(id)}`)
    if (method === 'GET') return { status: 200, body: routes.view(id) }
    if (method !== 'DELETE') throw methodNotAllowed('GET, DELETE')
    if (routes.origin(id) === 'config') {
      throw new BridgeError(409, 'DECLARED_IN_CONFIG', `route ${id} is declared in the config file: remove it there`)
    }
    await routes.stop(id)
    await store.delete('route', id)
    logger.info({ route: id, by: principal.id }, 'route removed')
    return { status: 204, body: undefined }
  }

  function readiness(): Answer {
    const states: Record<string, string> = {}
    let connected = phase === 'ready'
    for (const name of brokerNames) {
      const state = brokers.get(name)?.health().state ?? 'connecting'
      states[name] = state
      if (state !== 'connected') connected = false
    }
    const body: Record<string, unknown> = {
      status: connected ? 'ready' : 'not-ready',
      phase,
      brokers: states,
      subscriptions: { total: webhooks.size, active: webhooks.list().filter((s) => s.state === 'active').length },
      routes: { total: routes.size, active: routes.list().filter((r) => r.state === 'active').length },
    }
    if (failure) body.error = failure.toJSON().error
    return { status: connected ? 200 : 503, body }
  }

  function corsHeaders(request: IncomingMessage): Record<string, string> | undefined {
    if (!corsOrigins) return undefined
    const origin = request.headers.origin
    if (origin === undefined) return undefined
    if (corsOrigins.has('*')) return { 'access-control-allow-origin': '*' }
    if (!corsOrigins.has(origin)) return undefined
    return { 'access-control-allow-origin': origin, vary: 'Origin' }
  }

  /** Runs the request in its trace: an instrumented server's span, else the incoming `traceparent`. */
  function traceContext(request: IncomingMessage): Context {
    const active = context.active()
    if (trace.getSpan(active)) return active
    return propagation.extract(active, request.headers)
  }

  async function dispatch(
    request: IncomingMessage,
    response: ServerResponse,
    path: string,
    query: URLSearchParams | undefined,
    route: string,
    cors: Record<string, string> | undefined,
    setRoute: (route: string) => void,
  ): Promise<Answer | undefined> {
    const method = request.method
    if (path === ROUTE.health) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET')
      return { status: 200, body: { status: 'ok' } }
    }
    if (path === ROUTE.ready) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET')
      return readiness()
    }
    await whenReady()
    if (path.startsWith('/v1/topics/')) {
      const rest = path.slice('/v1/topics/'.length)
      const slash = rest.indexOf('/')
      const topicText = decode(slash === -1 ? rest : rest.slice(0, slash))
      const action = slash === -1 ? '' : rest.slice(slash)
      if (action === '') {
        if (method !== 'POST') throw methodNotAllowed('POST')
        const principal = auth.authenticate(request, undefined)
        const ref = topicRef(topicText)
        if (!principal.canPublish(ref)) throw forbidden(principal, 'publish to', ref)
        const body = await readBody(request, options.limits.bodyBytes)
        return publishOne(publishContext(ref, principal), request, body, query)
      }
      if (action === '/batch') {
        setRoute(ROUTE.batch)
        if (method !== 'POST') throw methodNotAllowed('POST')
        const principal = auth.authenticate(request, undefined)
        const ref = topicRef(topicText)
        if (!principal.canPublish(ref)) throw forbidden(principal, 'publish to', ref)
        const body = await readBody(request, options.limits.bodyBytes)
        return publishBatch(publishContext(ref, principal), request, body)
      }
      if (action === '/events') {
        setRoute(ROUTE.events)
        if (method !== 'GET') throw methodNotAllowed('GET')
        const principal = auth.authenticate(request, query)
        const ref = topicRef(topicText)
        if (!principal.canSubscribe(ref)) throw forbidden(principal, 'subscribe to', ref)
        const group = sseGroup(query?.get('group') ?? undefined)
        const from = query?.get('from') ?? 'latest'
        if (from !== 'latest' && from !== 'earliest') {
          throw new BridgeError(400, 'INVALID_REQUEST', 'from: expected "latest" or "earliest"')
        }
        const lastEventId = request.headers['last-event-id'] ?? query?.get('lastEventId') ?? undefined
        try {
          await streamEvents(request, response, {
            broker: brokerOf(ref),
            ref,
            group,
            from,
            lastEventId: Array.isArray(lastEventId) ? lastEventId[0] : lastEventId,
            heartbeatMs: options.sse.heartbeatMs,
            resumeBuffer: options.sse.resumeBuffer,
            logger,
            headers: cors ?? {},
            register: (close) => {
              streams.add(close)
              return () => streams.delete(close)
            },
          })
        } catch (error) {
          throw subscribeFailure(error)
        }
        return undefined
      }
      throw new BridgeError(404, 'NOT_FOUND', `no endpoint ${path}`)
    }
    if (path === ROUTE.subscriptions || path.startsWith(`${ROUTE.subscriptions}/`)) {
      const id =
        path.length > ROUTE.subscriptions.length ? decode(path.slice(ROUTE.subscriptions.length + 1)) : undefined
      if (id !== undefined) setRoute(ROUTE.subscription)
      else setRoute(route)
      return handleSubscriptions(request, auth.authenticate(request, undefined), id)
    }
    if (path === ROUTE.routes || path.startsWith(`${ROUTE.routes}/`)) {
      const id = path.length > ROUTE.routes.length ? decode(path.slice(ROUTE.routes.length + 1)) : undefined
      if (id !== undefined) setRoute(ROUTE.route)
      return handleRoutes(request, auth.authenticate(request, undefined), id)
    }
    throw new BridgeError(404, 'NOT_FOUND', `no endpoint ${path}`)
  }

  function decode(segment: string): string {
    try {
      return decodeURIComponent(segment)
    } catch {
      throw new BridgeError(400, 'INVALID_REQUEST', `malformed percent-encoding in ${JSON.stringify(segment)}`)
    }
  }

  function knownPath(path: string): string | undefined {
    if (path === ROUTE.health || path === ROUTE.ready) return path
    if (path.startsWith('/v1/topics/')) return ROUTE.publish
    if (path === ROUTE.subscriptions || path.startsWith(`${ROUTE.subscriptions}/`)) return ROUTE.subscriptions
    if (path === ROUTE.routes || path.startsWith(`${ROUTE.routes}/`)) return ROUTE.routes
    return undefined
  }

  function handler(request: IncomingMessage, response: ServerResponse, next?: Next): void {
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
    let route = knownPath(path)
    if (route === undefined && next) {
      next()
      return
    }
    route ??= path
    const cors = corsHeaders(request)
    const method = request.method ?? 'GET'

    if (method === 'OPTIONS' && corsOrigins) {
      response.writeHead(204, {
        ...(cors ?? {}),
        'access-control-allow-methods': 'GET, POST, DELETE',
        'access-control-allow-headers':
          request.headers['access-control-request-headers'] ?? 'authorization, content-type',
        'access-control-max-age': '600',
      })
      response.end()
      return
    }

    const parent = traceContext(request)
    let span: Span | undefined
    const spanName = () => `${method} ${route}`
    if (tracerRegistered()) {
      span = trace
        .getTracer('@backplane/messaging/bridge')
        .startSpan(
          spanName(),
          { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
          parent,
        )
    }
    const ctx = span ? trace.setSpan(parent, span) : parent
    let timer: NodeJS.Timeout | undefined

    let finished = false
    const finish = (status: number) => {
      if (finished) return
      finished = true
      if (timer) clearTimeout(timer)
      const attributes = {
        'http.request.method': method,
        'http.route': route as string,
        'http.response.status_code': status,
      }
      bridgeMetrics().requests.record((performance.now() - started) / 1000, attributes)
      if (span) {
        span.updateName(spanName())
        span.setAttribute('http.route', route as string)
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
      const headers: Record<string, string> = { ...(cors ?? {}) }
      if (e.status === 405) headers.allow = (e as BridgeError & { allow?: string }).allow ?? ''
      if (e.status === 401) headers['www-authenticate'] = 'Bearer'
      // The rest of the body is not read: the connection cannot carry another request.
      if (e.status === 413 || e.status === 408) headers.connection = 'close'
      if (phase === 'closing') headers.connection = 'close'
      sendError(response, e, headers)
      finish(e.status)
    }

    let streaming = false
    const work = context.with(ctx, () =>
      dispatch(request, response, path, query, route as string, cors, (r) => {
        route = r
        if (r === ROUTE.events) streaming = true
      }),
    )
    if (!streaming) {
      const limit = options.limits.requestTimeoutMs
      timer = setTimeout(() => {
        if (streaming || response.headersSent) return
        const reading = !request.readableEnded
        fail(
          reading
            ? new BridgeError(
                408,
                'REQUEST_TIMEOUT',
                `the request was not received within ${limit} ms (limits.requestTimeoutMs)`,
              )
            : new BridgeError(
                504,
                'PUBLISH_TIMEOUT',
                `no answer from the broker within ${limit} ms: the outcome is unknown; retry with the same Idempotency-Key to publish at most once`,
              ),
        )
      }, limit)
    }
    work.then((answer) => {
      if (answer === undefined) {
        finish(response.statusCode)
        return
      }
      if (response.headersSent) return
      if (answer.status === 204 || method === 'HEAD') {
        response.writeHead(answer.status, cors ?? {})
        response.end()
      } else sendJson(response, answer.status, answer.body, cors)
      finish(answer.status)
    }, fail)
  }

  return {
    handler,
    ready,
    brokers,
    async close() {
      if (phase === 'closing') return
      phase = 'closing'
      for (const close of [...streams]) close()
      // Let a start in progress finish, so that nothing it opens is left behind.
      await ready.catch(() => {})
      await Promise.allSettled([webhooks.close(), routes.close()])
      await store.close().catch(() => {})
      await Promise.allSettled(owned.map((b) => b.close()))
    },
  }
}
