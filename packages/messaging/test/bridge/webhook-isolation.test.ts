/**
 * One dead webhook endpoint among 50 healthy ones on one bridge (memory broker): the healthy
 * ones get every message, in the same order per key and about as fast as without it, and the
 * dead one costs only the calls its breaker allows (the failures that open it, then its probes).
 */
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { listen, type Receiver, type RunningBridge, receiver, startBridge, until } from './helpers.js'

const KEY = 'test-key-0123456789abcdef'
const HEALTHY = 50
const MESSAGES = 40
const KEYS = 5
// The dead subscription, with a short wait between its probes.
const DEAD = { concurrency: 5, breaker: { failures: 5, schedule: ['100ms'] } }

/** A server that takes requests and never answers them: every call ends at the bridge's timeout. */
async function blackHole(): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0
  const server: Server = createServer(() => {
    calls++
  })
  const port = await listen(server)
  return {
    url: `http://127.0.0.1:${port}/hook`,
    calls: () => calls,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

interface Outcome {
  /** Per healthy receiver, per key: the message numbers in the order they arrived. */
  orders: number[][][]
  ms: number
  dead?: { calls: number; probes: number; failures: number; state: string; deadLettered: number }
}

const open: (RunningBridge | { close(): Promise<void> } | Receiver)[] = []
afterAll(async () => {
  await Promise.allSettled(open.map((o) => ('stop' in o ? o.stop() : o.close())))
})

async function runOnce(withDead: boolean): Promise<Outcome> {
  const bridge = await startBridge(
    {
      brokers: { main: `memory://isolation-${randomUUID().slice(0, 8)}` },
      auth: { keys: [{ id: 'test', key: KEY, publish: ['*'], subscribe: ['*'] }] },
      webhooks: { allow: ['127.0.0.1'], timeout: '300ms', retry: { initialDelay: 20, maxDelay: 100, jitter: 'none' } },
      store: false,
    },
    KEY,
  )
  open.push(bridge)
  const topic = 'isolation.events'
  const receivers = await Promise.all(Array.from({ length: HEALTHY }, () => receiver()))
  open.push(...receivers)
  for (const r of receivers) {
    expect((await bridge.call('/v1/subscriptions', { json: { topic, url: r.url } })).status).toBe(201)
  }
  const hole = withDead ? await blackHole() : undefined
  let deadId: string | undefined
  if (hole) {
    open.push(hole)
    const created = await bridge.call('/v1/subscriptions', { json: { topic, url: hole.url, ...DEAD } })
    expect(created.status).toBe(201)
    deadId = created.body.id
  }
  const started = Date.now()
  for (let i = 0; i < MESSAGES; i++) {
    expect((await bridge.call(`/v1/topics/${topic}?key=k${i % KEYS}`, { json: { i } })).status).toBe(202)
  }
  await until(() => receivers.every((r) => r.received.length >= MESSAGES), 15_000, 'every healthy delivery')
  const ms = Date.now() - started
  const orders = receivers.map((r) =>
    Array.from({ length: KEYS }, (_, k) =>
      r.received.filter((c) => c.headers['ce-partitionkey'] === `k${k}`).map((c) => JSON.parse(String(c.body)).i),
    ),
  )
  let dead: Outcome['dead']
  if (hole && deadId) {
    // Let it go through a few probes.
    await until(
      async () => (await bridge.call(`/v1/subscriptions/${deadId}`)).body.breaker.probes >= 3,
      10_000,
      'probes of the dead endpoint',
    )
    const view = (await bridge.call(`/v1/subscriptions/${deadId}`)).body
    dead = {
      calls: hole.calls(),
      probes: view.breaker.probes,
      failures: view.breaker.failures,
      state: view.breaker.state,
      deadLettered: view.stats.deadLettered,
    }
  }
  await bridge.close()
  return { orders, ms, ...(dead ? { dead } : {}) }
}

describe('a dead webhook endpoint next to 50 healthy ones', () => {
  it('costs the healthy ones nothing, and itself only the calls its breaker allows', async () => {
    const alone = await runOnce(false)
    const withDead = await runOnce(true)
    console.info(`[webhook isolation] healthy only: ${alone.ms} ms; with a dead endpoint: ${withDead.ms} ms`)

    const inOrder = Array.from({ length: KEYS }, (_, k) =>
      Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => i % KEYS === k),
    )
    for (const outcome of [alone, withDead]) {
      expect(outcome.orders).toHaveLength(HEALTHY)
      for (const perKey of outcome.orders) expect(perKey).toEqual(inOrder)
    }
    expect(withDead.orders).toEqual(alone.orders)
    // Loose on purpose: the same work, not a benchmark.
    expect(withDead.ms).toBeLessThan(alone.ms * 3 + 1_000)

    const dead = withDead.dead as NonNullable<Outcome['dead']>
    expect(dead.state).not.toBe('closed')
    // The calls that opened it (and those already in flight then: at most concurrency - 1),
    // then one per probe: none while it was open.
    expect(dead.calls).toBeGreaterThanOrEqual(DEAD.breaker.failures + dead.probes - 1)
    expect(dead.calls).toBeLessThanOrEqual(DEAD.breaker.failures + DEAD.concurrency - 1 + dead.probes)
    expect(dead.failures).toBeGreaterThanOrEqual(DEAD.breaker.failures)
    expect(dead.deadLettered).toBe(0)
  })
})
