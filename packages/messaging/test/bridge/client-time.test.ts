/**
 * A client's CloudEvents `time` is kept: webhooks and SSE get it as sent, and an event with a
 * past `time` is not taken for an old message when a restarted bridge skips what was published
 * before a subscription or route was created (`backplane-published` is the publish time).
 * memory:// broker, one bus for every bridge of the file, a real webhook receiver.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { BridgeOptions } from '../../src/bridge/index.js'
import type { Broker, Message } from '../../src/index.js'
import { type RunningBridge, receiver, sleep, sse, startBridge, unique, until } from './helpers.js'

const KEY = 'time-key-0123456789abcdef'
const bus = `memory://time-${randomUUID().slice(0, 8)}`
const dir = mkdtempSync(join(tmpdir(), 'bridge-time-'))
const hook = await receiver()
const options = (extra: Partial<BridgeOptions> = {}): BridgeOptions => ({
  brokers: { main: bus },
  auth: { keys: [{ id: 'time', key: KEY, publish: ['*'], subscribe: ['*'] }] },
  webhooks: { allow: ['127.0.0.1'], retry: { initialDelay: 10, maxDelay: 50, jitter: 'none' } },
  routing: { retry: { initialDelay: 10, maxDelay: 50, jitter: 'none' } },
  store: false,
  ...extra,
})
const open: RunningBridge[] = []
async function start(extra?: Partial<BridgeOptions>): Promise<RunningBridge> {
  const b = await startBridge(options(extra), KEY)
  open.push(b)
  return b
}
const bridge = await start()

afterAll(async () => {
  await Promise.allSettled(open.map((b) => b.close()))
  await hook.stop()
  rmSync(dir, { recursive: true, force: true })
})

const yesterday = () => new Date(Date.now() - 86_400_000).toISOString()
const callsFor = (topic: string) => hook.received.filter((r) => r.headers['ce-type'] === topic)

function binary(b: RunningBridge, topic: string, id: string, time: string | undefined) {
  return b.call(`/v1/topics/${topic}`, {
    json: { id },
    headers: {
      'ce-specversion': '1.0',
      'ce-id': id,
      'ce-source': '/time-test',
      'ce-type': topic,
      ...(time === undefined ? {} : { 'ce-time': time }),
    },
  })
}

function structured(b: RunningBridge, topic: string, id: string, time: unknown) {
  return b.call(`/v1/topics/${topic}`, {
    body: JSON.stringify({ specversion: '1.0', id, source: '/time-test', type: topic, time, data: { id } }),
    headers: { 'content-type': 'application/cloudevents+json' },
  })
}

describe("a client's CloudEvents time", () => {
  it('arrives at a webhook and an SSE stream exactly as sent, binary and structured', async () => {
    const topic = unique('time')
    expect((await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url } })).status).toBe(201)
    const stream = await sse(`${bridge.base}/v1/topics/${topic}/events?access_token=${KEY}`)
    const times = { b: yesterday(), s: '2025-06-30T23:59:59.5-07:00' }
    expect((await binary(bridge, topic, 'b', times.b)).status).toBe(202)
    expect((await structured(bridge, topic, 's', times.s)).status).toBe(202)
    await until(() => callsFor(topic).length === 2 && stream.events.length === 2, 3_000, 'both deliveries')
    stream.close()
    for (const id of ['b', 's'] as const) {
      const call = callsFor(topic).find((r) => r.headers['ce-id'] === id)
      expect(call?.headers['ce-time']).toBe(times[id])
      // The publish time is the broker's bookkeeping, not part of the event.
      expect(call?.headers['backplane-published']).toBeUndefined()
      const frame = JSON.parse(stream.events.find((e) => e.id === id)?.data as string)
      expect(frame.time).toBe(times[id])
      expect(Object.keys(frame).sort()).toEqual([
        'data',
        'datacontenttype',
        'id',
        'source',
        'specversion',
        'time',
        'type',
      ])
    }
  })

  it('on the broker: ce-time is the event time, publishedAt the publish time', async () => {
    const topic = unique('time')
    const got: Message<unknown>[] = []
    const broker = bridge.bridge.brokers.get('main') as Broker
    const sub = await broker.subscribe(topic, (m) => void got.push(m), { from: 'earliest' })
    const time = yesterday()
    const before = Date.now()
    expect((await binary(bridge, topic, 'with', time)).status).toBe(202)
    expect((await binary(bridge, topic, 'without', undefined)).status).toBe(202)
    await until(() => got.length === 2, 3_000, 'both messages')
    await sub.close()
    const [withTime, withoutTime] = [got.find((m) => m.id === 'with'), got.find((m) => m.id === 'without')]
    expect(withTime?.headers['ce-time']).toBe(time)
    expect(withTime?.publishedAt.getTime()).toBeGreaterThanOrEqual(before)
    expect(withTime?.publishedAt.toISOString()).toBe(withTime?.headers['backplane-published'])
    expect(withoutTime?.headers['backplane-published']).toBeUndefined()
    expect(withoutTime?.publishedAt.toISOString()).toBe(withoutTime?.headers['ce-time'])
  })

  it.each([
    ['binary', (topic: string, time: string) => binary(bridge, topic, 'x', time), 'header ce-time'],
    ['structured', (topic: string, time: string) => structured(bridge, topic, 'x', time), 'time'],
  ])('%s: a time that is not an RFC 3339 timestamp gets 400 INVALID_CLOUDEVENT naming it', async (_, send, field) => {
    for (const bad of [
      'yesterday',
      '2026-12-01',
      '2026-12-01T10:00:00',
      '2026-12-01 10:00:00Z',
      '2026-02-30T10:00:00Z',
    ]) {
      const answer = await send(unique('time'), bad)
      expect(answer.status).toBe(400)
      expect(answer.body.error).toMatchObject({
        code: 'INVALID_CLOUDEVENT',
        message: `${field} has the value ${JSON.stringify(bad)}: expected an RFC 3339 timestamp with seconds, an upper-case T, and Z or a +hh:mm / -hh:mm offset (2026-12-01T09:30:00Z, 2026-12-01T10:30:00.25+01:00)`,
      })
    }
    const empty = await send(unique('time'), '')
    expect(empty.status).toBe(400)
    expect(empty.body.error.message).toMatch(new RegExp(`^${field} is empty: expected an RFC 3339 timestamp`))
  })

  it('a CloudEvents batch: each entry keeps its time; a bad one is refused alone, naming [i].time', async () => {
    const topic = unique('time')
    expect((await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url } })).status).toBe(201)
    const time = yesterday()
    const event = (id: string, t: unknown) => ({ specversion: '1.0', id, source: '/time-test', type: topic, time: t })
    const answer = await bridge.call(`/v1/topics/${topic}/batch`, {
      body: JSON.stringify([event('ok', time), event('bad', 'now')]),
      headers: { 'content-type': 'application/cloudevents-batch+json' },
    })
    expect(answer.status).toBe(207)
    expect(answer.body.results[1]).toMatchObject({
      status: 400,
      error: {
        code: 'INVALID_CLOUDEVENT',
        message: expect.stringMatching(/^\[1\]\.time has the value "now": expected/),
      },
    })
    await until(() => callsFor(topic).length === 1, 3_000, 'the webhook call')
    expect(callsFor(topic)[0]?.headers['ce-time']).toBe(time)
  })

  it('a route forwards the event with a publish time of its own, not the source message’s', async () => {
    const source = unique('time-src')
    const destination = unique('time-dest')
    const created = await bridge.call('/v1/routes', { json: { source, destinations: [destination] } })
    expect(created.status).toBe(201)
    const got: Message<unknown>[] = []
    const broker = bridge.bridge.brokers.get('main') as Broker
    const sub = await broker.subscribe(destination, (m) => void got.push(m), { from: 'earliest' })
    await sleep(50)
    const before = Date.now()
    expect((await binary(bridge, source, 'routed', yesterday())).status).toBe(202)
    await until(() => got.length === 1, 3_000, 'the routed message')
    await sub.close()
    expect(got[0]?.headers['backplane-published']).toBeUndefined()
    expect(got[0]?.publishedAt.getTime()).toBeGreaterThanOrEqual(before)
    expect((await bridge.call(`/v1/routes/${created.body.id}`, { method: 'DELETE' })).status).toBe(204)
  })

  it('after a restart, a subscription and a route created before the publish still get a backdated event', async () => {
    const store = { file: join(dir, `${unique('state')}.json`) }
    const topic = unique('time-restart')
    const destination = unique('time-restart-dest')
    // Published before the subscription and the route exist: the restart must skip it.
    expect((await binary(bridge, topic, 'old', undefined)).status).toBe(202)
    await sleep(20)

    const first = await start({ store })
    const sub = await first.call('/v1/subscriptions', { json: { id: 'time-keep', topic, url: hook.url } })
    const route = await first.call('/v1/routes', {
      json: { id: 'time-route', source: topic, destinations: [destination] },
    })
    expect([sub.status, route.status]).toEqual([201, 201])
    await sleep(20)
    await first.close()

    // While it is down, through another bridge on the same bus; then through the restarted one.
    const times = { down: yesterday(), after: new Date(Date.now() - 2 * 86_400_000).toISOString() }
    expect((await binary(bridge, topic, 'down', times.down)).status).toBe(202)
    const second = await start({ store })
    const routed: Message<unknown>[] = []
    const broker = second.bridge.brokers.get('main') as Broker
    const consumer = await broker.subscribe(destination, (m) => void routed.push(m), { from: 'earliest' })
    expect((await structured(second, topic, 'after', times.after)).status).toBe(202)

    await until(() => callsFor(topic).length >= 2 && routed.length >= 2, 5_000, 'the deliveries after the restart')
    await sleep(200)
    await consumer.close()
    const calls = callsFor(topic)
    expect(calls.map((c) => c.headers['ce-id']).sort()).toEqual(['after', 'down'])
    for (const id of ['down', 'after'] as const) {
      expect(calls.find((c) => c.headers['ce-id'] === id)?.headers['ce-time']).toBe(times[id])
    }
    expect(routed.map((m) => m.id).sort()).toEqual(['after', 'down'])
  })
})
