import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint } from '../endpoint.js'
import type { Answer } from '../idempotency.js'

export type HealthContext = Pick<BridgeContext, 'lifecycle' | 'brokers' | 'topics' | 'webhooks' | 'routes'>

/** `/readyz`: 200 once started with every broker connected, else 503 saying what is missing. */
function readiness({ lifecycle, brokers, topics, webhooks, routes }: HealthContext): Answer {
  const states: Record<string, string> = {}
  let connected = lifecycle.phase === 'ready'
  for (const name of topics.brokerNames) {
    const state = brokers.get(name)?.health().state ?? 'connecting'
    states[name] = state
    if (state !== 'connected') connected = false
  }
  const body: Record<string, unknown> = {
    status: connected ? 'ready' : 'not-ready',
    phase: lifecycle.phase,
    brokers: states,
    subscriptions: { total: webhooks.size, active: webhooks.list().filter((s) => s.state === 'active').length },
    routes: { total: routes.size, active: routes.list().filter((r) => r.state === 'active').length },
  }
  if (lifecycle.failure) body.error = lifecycle.failure.toJSON().error
  return { status: connected ? 200 : 503, body }
}

/** Liveness and readiness probes: answered in every phase, without credentials. */
export function healthEndpoints(ctx: HealthContext): Endpoint[] {
  const alive = (): Answer => ({ status: 200, body: { status: 'ok' } })
  const ready = () => readiness(ctx)
  return [
    defineEndpoint({ path: '/healthz', beforeReady: true, methods: { GET: alive, HEAD: alive } }),
    defineEndpoint({ path: '/readyz', beforeReady: true, methods: { GET: ready, HEAD: ready } }),
  ]
}
