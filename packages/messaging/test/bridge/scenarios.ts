/**
 * The bridge's integration scenarios, run unchanged against each broker (memory, Kafka, NATS
 * JetStream): publish → consume, webhooks with signatures, a receiver down then up, a dead
 * receiver next to a healthy one, SSE with resume, routes, and a restart that keeps
 * subscriptions and routes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { context, propagation } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BridgeOptions, verifyWebhookSignature } from '../../src/bridge/index.js'
import type { Broker, Message } from '../../src/index.js'
import { freePort, type RunningBridge, receiver, sleep, sse, startBridge, unique, until } from './helpers.js'

export interface ScenarioHooks {
  /** The broker entry of the bridges under test (a URL, or `{ url, kafka | nats: settings }`), the same broker each time. */
  broker(): BridgeOptions['brokers'][string]
  /** Multiplies waits: 1 for fast brokers. */
  slow?: number
  /** Run the tests of a file at once (slow brokers: their group joins overlap). */
  concurrent?: boolean
}

const KEY = 'test-key-0123456789abcdef'
const fast = { initialDelay: 20, maxDelay: 200, factor: 2, jitter: 'none' as const }
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

export function bridgeScenarios(name: string, hooks: ScenarioHooks): void {
  const slow = hooks.slow ?? 1
  const wait = (ms: number) => ms * slow
  const open: RunningBridge[] = []
  let dir: string
  let bridge: RunningBridge

  const options = (extra: Partial<BridgeOptions> = {}): BridgeOptions => ({
    brokers: { main: hooks.broker() },
    auth: { keys: [{ id: 'test', key: KEY, publish: ['*'], subscribe: ['*'] }] },
    webhooks: { allow: ['127.0.0.1'], retry: fast, timeout: '2s' },
    routing: { retry: fast },
    sse: { heartbeat: '200ms' },
    store: false,
    ...extra,
  })
  const start = async (extra?: Partial<BridgeOptions>) => {
    const b = await startBridge(options(extra), KEY)
    open.push(b)
    return b
  }
  const main = (b: RunningBridge) => b.bridge.brokers.get('main') as Broker
  /** Collects what a consumer group of the test gets (from the start of the topic). */
  async function consume(
    b: RunningBridge,
    topic: string,
  ): Promise<{ got: Message<unknown>[]; close(): Promise<void> }> {
    const got: Message<unknown>[] = []
    const sub = await main(b).subscribe(topic, (m) => void got.push(m), {
      group: unique('test').replace('.', '-'),
      from: 'earliest',
    })
    return { got, close: () => sub.close() }
  }

  const describeFn = hooks.concurrent ? describe.concurrent : describe
  describeFn(`HTTP bridge on ${name}`, () => {
    beforeAll(async () => {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
      propagation.setGlobalPropagator(new W3CTraceContextPropagator())
      dir = mkdtempSync(join(tmpdir(), 'bridge-test-'))
      bridge = await start()
    })
    afterAll(async () => {
      await Promise.allSettled(open.map((b) => b.close()))
      rmSync(dir, { recursive: true, force: true })
    })

    it('publishes JSON, bytes, CloudEvents (binary, structured) and batches; consumers get them with the trace', async () => {
      const topic = unique('orders')
      const consumer = await consume(bridge, topic)
      const one = await bridge.call(`/v1/topics/${topic}?key=o-1`, { json: { n: 1 }, headers: { traceparent } })
      expect(one.status).toBe(202)
      expect(one.body.id).toMatch(/^[0-9a-f-]{36}$/)
      const bytes = await bridge.call(`/v1/topics/${topic}`, {
        body: Buffer.from([1, 2, 3]),
        headers: { 'content-type': 'application/octet-stream' },
      })
      expect(bytes.status).toBe(202)
      const binary = await bridge.call(`/v1/topics/${topic}`, {
        json: { n: 2 },
        headers: {
          'ce-specversion': '1.0',
          'ce-id': 'evt-2',
          'ce-source': '/partner',
          'ce-type': 'order.created',
          'ce-tenant': 't1',
          'ce-partitionkey': 'o-2',
        },
      })
      expect(binary.body).toEqual({ id: 'evt-2' })
      const structured = await bridge.call(`/v1/topics/${topic}`, {
        body: JSON.stringify({
          specversion: '1.0',
          id: 'evt-3',
          source: '/partner',
          type: 'order.paid',
          data: { n: 3 },
          tenant: 't2',
        }),
        headers: { 'content-type': 'application/cloudevents+json' },
      })
      expect(structured.body).toEqual({ id: 'evt-3' })
      const batch = await bridge.call(`/v1/topics/${topic}/batch`, {
        json: {
          messages: [
            { data: { n: 4 }, key: 'o-4' },
            { data: { n: 5 }, headers: { tenant: 't3' } },
          ],
        },
      })
      expect(batch.status).toBe(202)
      expect(batch.body.accepted).toBe(2)
      await until(() => consumer.got.length === 6, wait(10_000), 'six messages')
      await consumer.close()
      const byId = new Map(consumer.got.map((m) => [m.id, m]))
      const first = byId.get(one.body.id) as Message<unknown>
      expect(first).toMatchObject({ data: { n: 1 }, key: 'o-1' })
      expect(first.headers.traceparent?.split('-')[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
      expect(first.headers['ce-source']).toBe('/backplane-bridge')
      expect(Buffer.from(byId.get(bytes.body.id)?.data as Uint8Array)).toEqual(Buffer.from([1, 2, 3]))
      expect(byId.get('evt-2')).toMatchObject({ data: { n: 2 }, key: 'o-2' })
      expect(byId.get('evt-2')?.headers).toMatchObject({
        'ce-type': 'order.created',
        'ce-source': '/partner',
        'ce-tenant': 't1',
      })
      expect(byId.get('evt-3')?.headers).toMatchObject({ 'ce-type': 'order.paid', 'ce-tenant': 't2' })
      expect(byId.get('evt-3')?.data).toEqual({ n: 3 })
      expect(byId.get(batch.body.results[0].id)?.key).toBe('o-4')
      expect(byId.get(batch.body.results[1].id)?.headers.tenant).toBe('t3')
    })

    it('an Idempotency-Key publishes once and answers the same id', async () => {
      const topic = unique('idem')
      const consumer = await consume(bridge, topic)
      const send = () => bridge.call(`/v1/topics/${topic}`, { json: { n: 1 }, headers: { 'idempotency-key': 'k-1' } })
      const answers = await Promise.all([send(), send(), send()])
      expect(new Set(answers.map((a) => a.body.id)).size).toBe(1)
      expect(answers.map((a) => a.status)).toEqual([202, 202, 202])
      const reused = await bridge.call(`/v1/topics/${topic}`, { json: { n: 2 }, headers: { 'idempotency-key': 'k-1' } })
      expect(reused.status).toBe(422)
      expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED')
      await bridge.call(`/v1/topics/${topic}`, { json: { marker: true } })
      await until(() => consumer.got.some((m) => (m.data as { marker?: boolean }).marker), wait(10_000), 'the marker')
      await consumer.close()
      expect(consumer.got.filter((m) => (m.data as { n?: number }).n === 1)).toHaveLength(1)
    })

    it('pushes to a webhook with CloudEvents headers, a valid signature and the trace', async () => {
      const topic = unique('hooked')
      const r = await receiver()
      const created = await bridge.call('/v1/subscriptions', { json: { topic, url: r.url, secret: 's3cret' } })
      expect(created.status).toBe(201)
      expect(created.body).toMatchObject({ id: expect.any(String), topic, hasSecret: true, state: 'active' })
      expect(created.body.secret).toBeUndefined()
      const published = await bridge.call(`/v1/topics/${topic}?key=k9`, {
        json: { hello: 'world' },
        headers: { traceparent },
      })
      await until(() => r.received.length === 1, wait(10_000), 'the webhook call')
      const call = r.received[0]
      expect(JSON.parse(String(call?.body))).toEqual({ hello: 'world' })
      expect(
        verifyWebhookSignature('s3cret', call?.body as Buffer, call?.headers['x-backplane-signature'] as string),
      ).toBe(true)
      expect(
        verifyWebhookSignature('wrong', call?.body as Buffer, call?.headers['x-backplane-signature'] as string),
      ).toBe(false)
      expect(call?.headers).toMatchObject({
        'ce-id': published.body.id,
        'ce-specversion': '1.0',
        'ce-type': topic,
        'ce-source': '/backplane-bridge',
        'ce-partitionkey': 'k9',
        'content-type': 'application/json',
        'x-backplane-subscription': created.body.id,
        'x-backplane-attempt': '1',
      })
      expect(String(call?.headers.traceparent).split('-')[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
      const list = await bridge.call('/v1/subscriptions')
      expect(list.body.subscriptions.map((s: { id: string }) => s.id)).toContain(created.body.id)
      expect((await bridge.call(`/v1/subscriptions/${created.body.id}`, { method: 'DELETE' })).status).toBe(204)
      expect((await bridge.call(`/v1/subscriptions/${created.body.id}`)).status).toBe(404)
      await r.stop()
    })

    it('a receiver that is down, then up, gets every message after retries', async () => {
      const topic = unique('down-up')
      const r = await receiver(await freePort())
      const created = await bridge.call('/v1/subscriptions', { json: { topic, url: r.url, maxAttempts: 50 } })
      expect(created.status).toBe(201)
      for (let i = 0; i < 3; i++) await bridge.call(`/v1/topics/${topic}`, { json: { i } })
      await until(
        async () => (await bridge.call(`/v1/subscriptions/${created.body.id}`)).body.stats.failedCalls >= 3,
        wait(10_000),
        'failed calls while the receiver is down',
      )
      await r.start()
      await until(() => new Set(r.received.map((c) => String(c.body))).size === 3, wait(10_000), 'three deliveries')
      expect(r.received.map((c) => JSON.parse(String(c.body)).i).sort()).toEqual([0, 1, 2])
      expect(r.received.some((c) => Number(c.headers['x-backplane-attempt']) > 1)).toBe(true)
      await bridge.call(`/v1/subscriptions/${created.body.id}`, { method: 'DELETE' })
      await r.stop()
    })

    it('a receiver answering 500 forever dead-letters with the reason; a healthy one on the same topic gets everything on time', async () => {
      const topic = unique('dead')
      const dlq = await consume(bridge, `${topic}.dlq`)
      const bad = await receiver()
      bad.answer = () => 500
      const good = await receiver()
      // A breaker that never opens here: each message has its 3 attempts (the breaker has its own tests).
      const badSub = await bridge.call('/v1/subscriptions', {
        json: { topic, url: bad.url, maxAttempts: 3, breaker: { failures: 1000 } },
      })
      const goodSub = await bridge.call('/v1/subscriptions', { json: { topic, url: good.url } })
      expect([badSub.status, goodSub.status]).toEqual([201, 201])
      const sent: number[] = []
      const started = Date.now()
      for (let i = 0; i < 20; i++) {
        await bridge.call(`/v1/topics/${topic}`, { json: { i } })
        sent.push(Date.now())
      }
      await until(() => good.received.length >= 20, wait(5_000), 'the healthy receiver')
      const lateness = good.received.map((c, i) => c.at - (sent[i] as number))
      expect(Math.max(...lateness)).toBeLessThan(wait(1_000))
      await until(() => dlq.got.length === 20, wait(20_000), 'twenty dead letters')
      await dlq.close()
      const dead = dlq.got[0] as Message<unknown>
      expect(dead.headers).toMatchObject({
        'backplane-dlq-reason': 'max-attempts',
        'backplane-dlq-attempts': '3',
        'backplane-dlq-topic': topic,
        'backplane-dlq-group': `backplane-bridge-webhook-${badSub.body.id}`,
      })
      expect(dead.headers['backplane-dlq-error']).toContain(`WebhookDeliveryError: POST ${bad.url} answered 500`)
      expect(dlq.got.map((m) => (m.data as { i: number }).i).sort((a, b) => a - b)).toEqual([...Array(20).keys()])
      expect(bad.received.length).toBe(60)
      expect(good.received.length).toBe(20)
      const stats = (await bridge.call(`/v1/subscriptions/${badSub.body.id}`)).body.stats
      expect(stats).toMatchObject({ deadLettered: 20, delivered: 0 })
      expect(Date.now() - started).toBeLessThan(wait(30_000))
      await bridge.call(`/v1/subscriptions/${badSub.body.id}`, { method: 'DELETE' })
      await bridge.call(`/v1/subscriptions/${goodSub.body.id}`, { method: 'DELETE' })
      await Promise.all([bad.stop(), good.stop()])
    })

    it('honours Retry-After on 429, removes the subscription on 410, does not follow redirects', async () => {
      const topic = unique('status')
      const r = await receiver()
      let calls = 0
      r.answer = () => {
        calls++
        if (calls === 1) return { status: 429, headers: { 'retry-after': '1' } }
        if (calls === 2) return { status: 302, headers: { location: 'http://169.254.169.254/' } }
        if (calls === 3) return 200
        return 410
      }
      const created = await bridge.call('/v1/subscriptions', { json: { topic, url: r.url, maxAttempts: 5 } })
      await bridge.call(`/v1/topics/${topic}`, { json: { n: 1 } })
      await until(() => r.received.length === 3, wait(10_000), 'three calls')
      const [first, second, third] = r.received
      expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950)
      expect(third?.headers['x-backplane-attempt']).toBe('3')
      await bridge.call(`/v1/topics/${topic}`, { json: { n: 2 } })
      await until(
        async () => (await bridge.call(`/v1/subscriptions/${created.body.id}`)).status === 404,
        wait(10_000),
        'removal on 410',
      )
      await bridge.call(`/v1/topics/${topic}`, { json: { n: 3 } })
      await sleep(wait(300))
      expect(r.received.length).toBe(4)
      await r.stop()
    })

    it('streams a topic as Server-Sent Events, and resumes after Last-Event-ID where the broker replays', async () => {
      const topic = unique('stream')
      const client = await sse(`${bridge.base}/v1/topics/${topic}/events?access_token=${KEY}`)
      expect(client.status).toBe(200)
      await until(() => client.comments.includes('ready'), wait(10_000), 'the stream to open')
      const ids: string[] = []
      for (let i = 0; i < 3; i++) {
        ids.push((await bridge.call(`/v1/topics/${topic}`, { json: { i } })).body.id)
        await sleep(3)
      }
      await until(() => client.events.length === 3, wait(10_000), 'three events')
      expect(client.events.map((e) => e.id)).toEqual(ids)
      const event = JSON.parse(client.events[0]?.data as string)
      expect(event).toMatchObject({ specversion: '1.0', id: ids[0], type: topic, data: { i: 0 } })
      await until(() => client.comments.includes('ping'), wait(5_000), 'a heartbeat')
      client.close()
      for (let i = 3; i < 5; i++) {
        ids.push((await bridge.call(`/v1/topics/${topic}`, { json: { i } })).body.id)
        await sleep(3)
      }
      const again = await sse(`${bridge.base}/v1/topics/${topic}/events`, {
        authorization: `Bearer ${KEY}`,
        'last-event-id': ids[1] as string,
      })
      if (main(bridge).health().capabilities.replay) {
        await until(() => again.events.length >= 3, wait(10_000), 'the events after the last one seen')
        expect(again.events.map((e) => e.id)).toEqual(ids.slice(2))
      } else {
        await until(() => again.events.some((e) => e.event === 'gap'), wait(10_000), 'a gap event')
      }
      again.close()
      // The stream's subscriptions are gone with their clients.
      await until(() => main(bridge).health().subscriptions === 0 || name !== 'memory', wait(5_000), 'closed streams')
    })

    it('routes a topic to two others, with a filter on type', async () => {
      const source = unique('route-src')
      const [d1, d2] = [unique('route-d1'), unique('route-d2')]
      const c1 = await consume(bridge, d1)
      const c2 = await consume(bridge, d2)
      const created = await bridge.call('/v1/routes', {
        json: { source, destinations: [d1, `main:${d2}`], filter: { type: ['order.*'] } },
      })
      expect(created.status).toBe(201)
      const kept = await bridge.call(`/v1/topics/${source}`, {
        json: { n: 1 },
        headers: {
          'ce-specversion': '1.0',
          'ce-id': 'r-1',
          'ce-source': '/t',
          'ce-type': 'order.created',
          traceparent,
        },
      })
      await bridge.call(`/v1/topics/${source}`, {
        json: { n: 2 },
        headers: { 'ce-specversion': '1.0', 'ce-id': 'r-2', 'ce-source': '/t', 'ce-type': 'invoice.created' },
      })
      await until(() => c1.got.length === 1 && c2.got.length === 1, wait(10_000), 'the routed message')
      await sleep(wait(200))
      await Promise.all([c1.close(), c2.close()])
      for (const got of [c1.got, c2.got]) {
        expect(got).toHaveLength(1)
        expect(got[0]).toMatchObject({ id: kept.body.id, data: { n: 1 } })
        expect(got[0]?.headers).toMatchObject({ 'ce-type': 'order.created', 'ce-source': '/t' })
        expect(got[0]?.headers.traceparent?.split('-')[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
      }
      const loop = await bridge.call('/v1/routes', { json: { source: d1, destinations: [source] } })
      expect(loop.status).toBe(400)
      expect(loop.body.error.code).toBe('ROUTE_LOOP')
      expect((await bridge.call(`/v1/routes/${created.body.id}`, { method: 'DELETE' })).status).toBe(204)
    })

    it('dead letters: lists, shows and replays them over HTTP to the subscription that failed them, within the key scopes', async () => {
      const topic = unique('dead-letters')
      const keys = {
        reader: 'reader-key-0123456789abcdef',
        outsider: 'outsider-key-0123456789abcd',
      }
      const dl = await start({
        auth: {
          keys: [
            { id: 'test', key: KEY, publish: ['*'], subscribe: ['*'] },
            { id: 'reader', key: keys.reader, publish: [], subscribe: ['dead-letters.*'] },
            { id: 'outsider', key: keys.outsider, publish: ['other.*'], subscribe: ['other.*'] },
          ],
        },
      })
      const failing = await receiver()
      failing.answer = () => 500
      const healthy = await receiver()
      const bad = await dl.call('/v1/subscriptions', { json: { topic, url: failing.url, maxAttempts: 2 } })
      const good = await dl.call('/v1/subscriptions', { json: { topic, url: healthy.url } })
      expect([bad.status, good.status]).toEqual([201, 201])
      const ids: string[] = []
      for (let n = 0; n < 2; n++) ids.push((await dl.call(`/v1/topics/${topic}?key=k${n}`, { json: { n } })).body.id)
      await until(
        async () => (await dl.call(`/v1/subscriptions/${bad.body.id}`)).body.stats.deadLettered === 2,
        wait(15_000),
        'two dead letters',
      )
      await until(() => healthy.received.length === 2, wait(10_000), 'the healthy receiver')

      const list = await dl.call(`/v1/dead-letters?topic=${topic}`)
      expect(list.status).toBe(200)
      expect(list.body).toMatchObject({ topic: `main:${topic}`, deadLetterTopic: `${topic}.dlq`, count: 2 })
      expect(list.body.deadLetters.map((d: { id: string }) => d.id).sort()).toEqual([...ids].sort())
      expect(list.body.deadLetters[0]).toMatchObject({
        status: 'pending',
        group: `backplane-bridge-webhook-${bad.body.id}`,
      })
      const reason: string = list.body.deadLetters[0].reason
      const byReason = await dl.call(`/v1/dead-letters?topic=${topic}&reason=${reason}&limit=1`)
      expect(byReason.body.deadLetters.map((d: { id: string }) => d.id)).toEqual([list.body.deadLetters[0].id])
      expect((await dl.call(`/v1/dead-letters?topic=${topic}&reason=other`)).body.count).toBe(0)
      const one = await dl.call(`/v1/dead-letters/${ids[0]}?topic=${topic}`, { key: keys.reader })
      expect(one.status).toBe(200)
      expect(one.body).toMatchObject({ id: ids[0], key: 'k0', data: { n: 0 }, topic })
      expect(one.body.error).toContain('answered 500')
      expect(one.body.headers['ce-id']).toBe(ids[0])

      // Scopes: reading needs subscribe on the topic, replaying publish on it.
      const outsider = await dl.call(`/v1/dead-letters?topic=${topic}`, { key: keys.outsider })
      expect([outsider.status, outsider.body.error.code]).toEqual([403, 'FORBIDDEN'])
      const readerReplay = await dl.call('/v1/dead-letters/replay', { key: keys.reader, json: { topic } })
      expect([readerReplay.status, readerReplay.body.error.code]).toEqual([403, 'FORBIDDEN'])
      // Bad input: 4xx with the usual JSON error body.
      const badSince = await dl.call(`/v1/dead-letters?topic=${topic}&since=yesterday`)
      expect([badSince.status, badSince.body.error.code]).toEqual([400, 'INVALID_REQUEST'])
      expect(badSince.body.error.message).toContain('since')
      expect((await dl.call('/v1/dead-letters')).status).toBe(400)
      expect((await dl.call(`/v1/dead-letters?topic=${topic}&reasn=x`)).status).toBe(400)
      const missing = await dl.call(`/v1/dead-letters/no-such-id?topic=${topic}`)
      expect([missing.status, missing.body.error.code]).toEqual([404, 'NOT_FOUND'])
      const badFilter = await dl.call('/v1/dead-letters/replay', { json: { topic, filter: { status: 'lost' } } })
      expect([badFilter.status, badFilter.body.error.code]).toEqual([400, 'INVALID_REQUEST'])

      failing.answer = () => 200
      const replay = await dl.call('/v1/dead-letters/replay', { json: { topic, filter: { reason } } })
      expect(replay.status).toBe(200)
      expect(replay.body).toMatchObject({ replayed: 2, skipped: 0 })
      const replayed = () => failing.received.filter((c) => c.headers['backplane-replayed-from'] !== undefined)
      await until(() => replayed().length === 2, wait(15_000), 'the replays at the failing receiver')
      expect(
        replayed()
          .map((c) => c.headers['ce-id'])
          .sort(),
      ).toEqual([...ids].sort())
      expect(replayed()[0]?.headers['backplane-replayed-from']).toMatch(
        new RegExp(`^${topic.replace('.', '\\.')}\\.dlq@`),
      )
      // The healthy subscription, which handled them, does not get them again.
      await sleep(wait(300))
      expect(healthy.received).toHaveLength(2)
      const again = await dl.call('/v1/dead-letters/replay', { json: { topic, filter: { reason } } })
      expect(again.body).toMatchObject({ replayed: 0, skipped: 2 })
      const done = await dl.call(`/v1/dead-letters?topic=${topic}&status=replayed`)
      expect(done.body.count).toBe(2)
      await Promise.all([failing.stop(), healthy.stop()])
    })

    it('a restart keeps the subscriptions and routes added at run time, and what was published meanwhile', async () => {
      const store = { file: join(dir, `${unique('state')}.json`) }
      const first = await start({ store })
      const topic = unique('restart')
      const destination = unique('restart-dest')
      const r = await receiver()
      const sub = await first.call('/v1/subscriptions', { json: { id: 'keep-me', topic, url: r.url, secret: 'x' } })
      const route = await first.call('/v1/routes', {
        json: { id: 'keep-route', source: topic, destinations: [destination] },
      })
      expect([sub.status, route.status]).toEqual([201, 201])
      await first.call(`/v1/topics/${topic}`, { json: { n: 1 } })
      await until(() => r.received.length === 1, wait(10_000), 'the first delivery')
      await first.close()

      // While the bridge is down.
      await main(bridge).publish(topic, { n: 2 })

      const second = await start({ store })
      const subs = (await second.call('/v1/subscriptions')).body.subscriptions
      expect(subs).toEqual([
        expect.objectContaining({ id: 'keep-me', topic, url: r.url, origin: 'api', hasSecret: true }),
      ])
      const routes = (await second.call('/v1/routes')).body.routes
      expect(routes).toEqual([
        expect.objectContaining({ id: 'keep-route', source: topic, destinations: [destination] }),
      ])
      const dest = await consume(second, destination)
      await second.call(`/v1/topics/${topic}`, { json: { n: 3 } })
      // Webhooks are delivered at least once: a message delivered just before the close may come
      // again after the restart (its ack or offset commit did not make it). Nothing may be lost.
      const distinct = () => [...new Set(r.received.map((c) => JSON.parse(String(c.body)).n as number))]
      await until(() => distinct().length === 3, wait(10_000), 'deliveries after the restart')
      expect(distinct()).toEqual([1, 2, 3])
      const last = r.received.find((c) => JSON.parse(String(c.body)).n === 3)
      expect(verifyWebhookSignature('x', last?.body as Buffer, last?.headers['x-backplane-signature'] as string)).toBe(
        true,
      )
      await until(() => new Set(dest.got.map((m) => m.id)).size === 3, wait(10_000), 'the route after the restart')
      await dest.close()
      await r.stop()
    })

    // The webhook breaker: its own bridges, with a short schedule (the waits are real, not faked).
    describe(`webhook breaker on ${name}`, () => {
      const bridges: RunningBridge[] = []
      let stateDir: string
      // JetStream: a message released while its subscription closes is redelivered into the pulls
      // still open on the server; if the connection closes then (the restart below), it waits
      // ackWait (30 s by default) before it comes again. Nothing is lost: a short wait here.
      const entry = hooks.broker()
      const broker =
        typeof entry === 'string' && entry.startsWith('nats:') ? { url: entry, nats: { ackWait: '2s' } } : entry
      const breakerBridge = async (extra: Partial<BridgeOptions> = {}) => {
        const b = await startBridge(
          options({
            brokers: { main: broker },
            webhooks: {
              allow: ['127.0.0.1'],
              retry: fast,
              timeout: '2s',
              breaker: { failures: 3, schedule: ['50ms', '100ms'], disableAfter: '1h' },
            },
            ...extra,
          }),
          KEY,
        )
        bridges.push(b)
        return b
      }
      const viewOf = async (b: RunningBridge, id: string) => (await b.call(`/v1/subscriptions/${id}`)).body
      const distinct = (r: { received: { body: Buffer }[] }) =>
        [...new Set(r.received.map((c) => JSON.parse(String(c.body)).i as number))].sort((x, y) => x - y)

      beforeAll(() => {
        stateDir = mkdtempSync(join(tmpdir(), 'bridge-breaker-'))
      })
      afterAll(async () => {
        await Promise.allSettled(bridges.map((b) => b.close()))
        rmSync(stateDir, { recursive: true, force: true })
      })

      it('failing calls open it; nothing is called while open; the probe closes it once the endpoint is back, and every message arrives', async () => {
        const b = await breakerBridge()
        const topic = unique('breaker')
        const dlq = await consume(b, `${topic}.dlq`)
        const changes: string[] = []
        b.bridge.events.on('breaker', (e) => changes.push(`${e.from}>${e.to}`))
        const r = await receiver()
        let down = true
        const answered: number[] = []
        r.answer = () => answered[answered.push(down ? 503 : 200) - 1] as number
        // One call at a time: every call the receiver sees is one the breaker counted.
        const sub = await b.call('/v1/subscriptions', { json: { topic, url: r.url, concurrency: 1 } })
        expect(sub.status).toBe(201)
        const id = sub.body.id as string
        for (let i = 0; i < 10; i++) await b.call(`/v1/topics/${topic}?key=k${i % 3}`, { json: { i } })
        // Opened, probed at least once more (and failed), open again.
        await until(
          async () => {
            const { breaker } = await viewOf(b, id)
            return breaker.state === 'open' && breaker.probes >= 1
          },
          wait(15_000),
          'a failed probe',
        )
        const open = (await viewOf(b, id)).breaker
        expect(open).toMatchObject({ state: 'open', failures: 3 + open.probes })
        expect(Date.parse(open.nextProbeAt)).toBeGreaterThan(Date.parse(open.openedAt))
        expect(Date.parse(open.failingSince)).toBeLessThanOrEqual(Date.parse(open.openedAt))
        // Every call is one of the failures that opened it or a probe: none while it was open.
        expect(r.received).toHaveLength(open.failures)
        down = false
        await until(() => distinct(r).length === 10, wait(20_000), 'every message after the endpoint recovered')
        expect(distinct(r)).toEqual([...Array(10).keys()])
        const after = await viewOf(b, id)
        expect(after).toMatchObject({ state: 'active', breaker: { state: 'closed', failures: 0 } })
        expect(after.stats.deadLettered).toBe(0)
        expect(changes.slice(0, 2)).toEqual(['closed>open', 'open>half-open'])
        expect(changes).toContain('half-open>open')
        expect(changes.at(-1)).toBe('half-open>closed')
        // Order per key held through the pauses.
        for (const key of ['k0', 'k1', 'k2']) {
          const delivered = r.received
            .filter((c, n) => c.headers['ce-partitionkey'] === key && answered[n] === 200)
            .map((c) => JSON.parse(String(c.body)).i as number)
          const firsts = delivered.filter((i, n) => delivered.indexOf(i) === n)
          expect(firsts).toEqual([...firsts].sort((x, y) => x - y))
        }
        await sleep(wait(200))
        expect(dlq.got).toHaveLength(0)
        await dlq.close()
        await r.stop()
      })

      it('failing for disableAfter disables it (state, event, store, restart); enable delivers what waited', async () => {
        const store = { file: join(stateDir, `${unique('state')}.json`) }
        const settings = { failures: 2, schedule: ['50ms'], disableAfter: '300ms' }
        const extra = (s: typeof store) => ({
          store: s,
          webhooks: { allow: ['127.0.0.1'], retry: fast, timeout: '2s', breaker: settings },
        })
        const first = await breakerBridge(extra(store))
        const disabledEvents: { subscription: string; url: string; reason: string }[] = []
        first.bridge.events.on('webhookDisabled', (e) => disabledEvents.push(e))
        const topic = unique('disable')
        const dlq = await consume(first, `${topic}.dlq`)
        const r = await receiver(await freePort()) // nothing listens yet: connections are refused
        const url = `${r.url}?token=not-for-logs`
        const sub = await first.call('/v1/subscriptions', { json: { topic, url, concurrency: 1 } })
        expect(sub.status).toBe(201)
        const id = sub.body.id as string
        for (let i = 0; i < 3; i++) await first.call(`/v1/topics/${topic}`, { json: { i } })
        await until(async () => (await viewOf(first, id)).state === 'disabled', wait(15_000), 'disabled')
        const view = await viewOf(first, id)
        expect(view.breaker.state).toBe('disabled')
        expect(view.breaker.nextProbeAt).toBeUndefined()
        expect(view.breaker.reason).toMatch(/^no successful call since /)
        expect(Date.parse(view.breaker.disabledAt) - Date.parse(view.breaker.failingSince)).toBeGreaterThanOrEqual(300)
        expect(disabledEvents).toEqual([
          expect.objectContaining({ subscription: id, url: r.url, reason: view.breaker.reason }),
        ])
        const storedNow = () =>
          JSON.parse(readFileSync(store.file, 'utf8')).subscriptions.find((s: { id: string }) => s.id === id)
        // Written right after the state changed.
        await until(() => storedNow().disabled !== undefined, wait(5_000), 'the flag in the store')
        expect(storedNow().disabled).toEqual({ at: view.breaker.disabledAt, reason: view.breaker.reason })

        // Across a restart it stays disabled; what is published meanwhile waits in the broker.
        await first.close()
        const second = await breakerBridge(extra(store))
        expect(await viewOf(second, id)).toMatchObject({ state: 'disabled', breaker: { state: 'disabled' } })
        for (let i = 3; i < 5; i++) await second.call(`/v1/topics/${topic}`, { json: { i } })
        await r.start()
        await sleep(wait(200))
        expect(r.received).toHaveLength(0)

        const enabled = await second.call(`/v1/subscriptions/${id}/enable`, { method: 'POST' })
        expect(enabled.status).toBe(200)
        expect(enabled.body).toMatchObject({ id, state: 'active', breaker: { state: 'closed', failures: 0 } })
        await until(() => distinct(r).length === 5, wait(20_000), 'the messages that waited')
        expect(distinct(r)).toEqual([0, 1, 2, 3, 4])
        expect(storedNow().disabled).toBeUndefined()
        expect((await second.call('/v1/subscriptions/nope/enable', { method: 'POST' })).status).toBe(404)
        await sleep(wait(200))
        expect(dlq.got).toHaveLength(0)
        await dlq.close()
        await r.stop()
      })
    })
  })
}
