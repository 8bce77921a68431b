import type { Broker, LoggerLike, Message, PublishOptions, Subscription } from '@backplane/messaging'
import { BridgeError } from './errors.js'
import { compileFilter, type HeaderPredicate } from './filter.js'
import { bridgeMetrics } from './metrics.js'
import type { ResolvedBridgeOptions } from './options.js'
import { retryStart } from './retry-start.js'
import type { StoredRoute } from './store.js'
import type { TopicRef } from './topics.js'

export type RoutingSettings = ResolvedBridgeOptions['routing']
export type RouteState = 'starting' | 'active' | 'failed'

export interface RouteView extends Omit<StoredRoute, 'origin'> {
  origin: 'config' | 'api'
  state: RouteState
  group: string
  stats: { forwarded: number; filtered: number; failed: number; lastError: string | undefined }
}

/** Headers the core sets from publish options (or always): not copied as plain headers. */
const SET_BY_CORE = new Set(['ce-id', 'ce-source', 'ce-type', 'ce-specversion', 'ce-time', 'content-type'])

interface Target {
  ref: TopicRef
  broker: Broker
}

interface Running {
  stored: StoredRoute
  origin: 'config' | 'api'
  source: TopicRef
  broker: Broker
  targets: Target[]
  group: string
  filter: HeaderPredicate | undefined
  subscription: Subscription | undefined
  state: RouteState
  stats: RouteView['stats']
  retry: NodeJS.Timeout | undefined
  /** Started again (after a restart): read from the earliest, skip what predates `createdAt`. */
  since: number | undefined
}

/**
 * The options that re-publish a message as it was: same CloudEvents id, source and type (so
 * consumers can de-duplicate across the hop), same key, content type and headers. The trace
 * goes on from the route's process span. `ce-time` becomes the time of forwarding (the core
 * sets it on publish).
 */
export function forwardOptions(message: Message<Uint8Array>): PublishOptions {
  const headers: Record<string, string> = {}
  for (const name in message.headers) {
    if (SET_BY_CORE.has(name)) continue
    headers[name] = message.headers[name] as string
  }
  const h = message.headers
  const options: PublishOptions = { id: message.id, headers }
  if (h['ce-source'] !== undefined) options.source = h['ce-source']
  if (h['ce-type'] !== undefined) options.type = h['ce-type']
  if (h['content-type'] !== undefined) options.contentType = h['content-type']
  if (message.key !== undefined) options.key = message.key
  return options
}

/** Would adding `source → destinations` close a cycle among the routes? */
export function findLoop(routes: { source: string; destinations: string[] }[]): string[] | undefined {
  const edges = new Map<string, string[]>()
  for (const r of routes) edges.set(r.source, [...(edges.get(r.source) ?? []), ...r.destinations])
  const visiting = new Set<string>()
  const done = new Set<string>()
  const path: string[] = []
  const visit = (node: string): string[] | undefined => {
    if (visiting.has(node)) return [...path.slice(path.indexOf(node)), node]
    if (done.has(node)) return undefined
    visiting.add(node)
    path.push(node)
    for (const next of edges.get(node) ?? []) {
      const loop = visit(next)
      if (loop) return loop
    }
    path.pop()
    visiting.delete(node)
    done.add(node)
    return undefined
  }
  for (const node of edges.keys()) {
    const loop = visit(node)
    if (loop) return loop
  }
  return undefined
}

export interface RouteDeps {
  settings: RoutingSettings
  logger: LoggerLike
}

/**
 * Routes: a consumer group per route on the source topic; each message is published to every
 * destination (any broker), then acked. A destination that fails is retried with backoff; the
 * ones already written are not written again on the retry. After `maxAttempts` the message
 * goes to the source's dead-letter topic.
 */
export class RouteManager {
  private readonly running = new Map<string, Running>()
  private closed = false

  constructor(private readonly deps: RouteDeps) {}

  has(id: string): boolean {
    return this.running.has(id)
  }

  origin(id: string): 'config' | 'api' | undefined {
    return this.running.get(id)?.origin
  }

  sourceOf(id: string): TopicRef | undefined {
    return this.running.get(id)?.source
  }

  /** The routes' edges as qualified names, for loop checks. */
  edges(): { source: string; destinations: string[] }[] {
    return [...this.running.values()].map((r) => ({
      source: r.source.qualified,
      destinations: r.targets.map((t) => t.ref.qualified),
    }))
  }

  private register(
    stored: StoredRoute,
    origin: 'config' | 'api',
    source: TopicRef,
    broker: Broker,
    targets: Target[],
  ): Running {
    const run: Running = {
      stored,
      origin,
      source,
      broker,
      targets,
      group: `backplane-bridge-route-${stored.id}`,
      filter: compileFilter(stored.filter),
      subscription: undefined,
      state: 'starting',
      stats: { forwarded: 0, filtered: 0, failed: 0, lastError: undefined },
      retry: undefined,
      since: undefined,
    }
    this.running.set(stored.id, run)
    return run
  }

  async start(
    stored: StoredRoute,
    origin: 'config' | 'api',
    source: TopicRef,
    broker: Broker,
    targets: Target[],
  ): Promise<void> {
    const run = this.register(stored, origin, source, broker, targets)
    try {
      await this.subscribe(run)
    } catch (error) {
      this.forget(run)
      throw error
    }
  }

  /** For routes loaded from the config or the store; `resume` as for webhook subscriptions. */
  startInBackground(
    stored: StoredRoute,
    origin: 'config' | 'api',
    source: TopicRef,
    broker: Broker,
    targets: Target[],
    resume: boolean,
  ): Promise<void> {
    const run = this.register(stored, origin, source, broker, targets)
    if (resume && broker.health().capabilities.replay) run.since = Date.parse(stored.createdAt)
    return this.subscribe(run).catch((error: unknown) => {
      if (this.closed || this.running.get(stored.id) !== run) return
      run.state = 'failed'
      run.stats.lastError = (error as Error)?.message ?? String(error)
      this.deps.logger.error({ route: stored.id, err: run.stats.lastError }, 'route could not start; retrying')
      this.retryLater(run, 1_000)
    })
  }

  private retryLater(run: Running, delay: number): void {
    retryStart(
      run,
      () => !this.closed && this.running.get(run.stored.id) === run,
      () => this.subscribe(run),
      delay,
    )
  }

  private async subscribe(run: Running): Promise<void> {
    const { settings } = this.deps
    // Destinations already written for a message, across its attempts (same delivery, same bytes).
    const written = new WeakMap<Uint8Array, Set<number>>()
    const metrics = bridgeMetrics()
    const attributes = { 'backplane.route.id': run.stored.id }
    run.subscription = await run.broker.subscribe<Uint8Array>(
      run.source.topic,
      async (message) => {
        if (run.since !== undefined && message.publishedAt.getTime() < run.since) return
        if (run.filter && !run.filter(message.headers)) {
          run.stats.filtered++
          metrics.routed.add(1, { ...attributes, outcome: 'filtered' })
          return
        }
        let done = written.get(message.raw)
        if (!done) {
          done = new Set()
          written.set(message.raw, done)
        }
        const options = forwardOptions(message)
        const failures: string[] = []
        await Promise.all(
          run.targets.map(async (target, index) => {
            if (done.has(index)) return
            try {
              await target.broker.publish(target.ref.topic, message.raw, {
                ...options,
                headers: { ...options.headers },
              })
              done.add(index)
            } catch (error) {
              failures.push(`${target.ref.qualified}: ${(error as Error)?.message ?? error}`)
            }
          }),
        )
        if (failures.length > 0) {
          run.stats.failed++
          run.stats.lastError = failures.join('; ')
          metrics.routed.add(1, { ...attributes, outcome: 'failed' })
          throw new Error(`route ${run.stored.id} could not write to ${failures.join('; ')}`)
        }
        run.stats.forwarded++
        metrics.routed.add(1, { ...attributes, outcome: 'forwarded' })
      },
      {
        group: run.group,
        from: run.since === undefined ? 'latest' : 'earliest',
        raw: true,
        ordered: true,
        concurrency: settings.concurrency,
        retry: { ...settings.retry, maxAttempts: run.stored.maxAttempts ?? settings.retry.maxAttempts },
        ...(run.stored.deadLetter === undefined ? {} : { deadLetter: run.stored.deadLetter }),
      },
    )
    run.state = 'active'
    if (this.closed || this.running.get(run.stored.id) !== run) await run.subscription.close()
  }

  private forget(run: Running): void {
    if (this.running.get(run.stored.id) === run) this.running.delete(run.stored.id)
    if (run.retry) clearTimeout(run.retry)
  }

  async stop(id: string): Promise<boolean> {
    const run = this.running.get(id)
    if (!run) return false
    this.forget(run)
    run.state = 'failed'
    await run.subscription?.close()
    return true
  }

  view(id: string): RouteView | undefined {
    const run = this.running.get(id)
    if (!run) return undefined
    const { origin: _, ...stored } = run.stored
    return { ...stored, origin: run.origin, state: run.state, group: run.group, stats: { ...run.stats } }
  }

  list(): RouteView[] {
    return [...this.running.keys()].map((id) => this.view(id) as RouteView)
  }

  get size(): number {
    return this.running.size
  }

  allActive(): boolean {
    for (const run of this.running.values()) if (run.state !== 'active') return false
    return true
  }

  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.running.keys()].map((id) => this.stop(id)))
  }
}

export function loopError(loop: string[]): BridgeError {
  return new BridgeError(400, 'ROUTE_LOOP', `this route would make a loop: ${loop.join(' → ')}`)
}
