/**
 * Regression tests for issue #13, one per defect: each failed on the bridge before the fix.
 * memory:// broker, API keys on, a real webhook receiver and SSE clients.
 */
import { randomUUID } from 'node:crypto'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { type BridgeServer, startBridgeServer } from '../../src/bridge/index.js'
import { toCloudEventJson } from '../../src/bridge/sse.js'
import { createWebhookPolicy } from '../../src/bridge/ssrf.js'
import { callWebhook } from '../../src/bridge/webhook-client.js'
import type { Broker, Message } from '../../src/index.js'
import { receiver, sleep, sse, startBridge, unique, until } from './helpers.js'

const ADMIN = 'admin-key-0123456789abcdef'
const READER = 'reader-key-0123456789abcdef'
const hook = await receiver()
const bus = `memory://hostile-${randomUUID().slice(0, 8)}`
const bridge = await startBridge(
  {
    brokers: { main: bus },
    auth: {
      keys: [
        { id: 'admin', key: ADMIN, publish: ['*'], subscribe: ['*'] },
        { id: 'reader', key: READER, publish: [], subscribe: ['orders.*'] },
      ],
    },
    webhooks: {
      allow: ['127.0.0.1'],
      timeout: 300,
      retry: { maxAttempts: 2, initialDelay: 10, maxDelay: 10, jitter: 'none' },
    },
    store: false,
  },
  ADMIN,
)

// An exception thrown from a timer or event handler would end a real bridge process; in the
// test worker it lands here instead.
const uncaught: unknown[] = []
const onUncaught = (error: unknown) => void uncaught.push(error)
process.on('uncaughtException', onUncaught)
process.on('unhandledRejection', onUncaught)

afterAll(async () => {
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
  await bridge.close()
  await hook.stop()
})

async function subscribe(topic: string, extra: Record<string, unknown> = {}): Promise<string> {
  const answer = await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url, ...extra } })
  expect(answer.status).toBe(201)
  return answer.body.id as string
}

const forTopic = (topic: string) =>
  hook.received.filter((r) => r.headers['x-backplane-subscription'] !== undefined && r.headers['ce-type'] === topic)

function expectError(answer: { status: number; body: { error?: { code: string; message: string } } }) {
  return expect({ status: answer.status, code: answer.body?.error?.code, message: answer.body?.error?.message })
}

describe('#13 defect 1: a message key the webhook call cannot carry as it is', () => {
  it('a non-ASCII key is accepted and arrives percent-encoded in ce-partitionkey; the process survives', async () => {
    const topic = unique('keys')
    await subscribe(topic)
    const key = 'Łódź'
    const answer = await bridge.call(`/v1/topics/${topic}?key=${encodeURIComponent(key)}`, { json: { city: key } })
    expect(answer.status).toBe(202)
    await until(() => forTopic(topic).length > 0, 3_000, 'the webhook call')
    await sleep(400) // past webhooks.timeout: the old code threw from its timer here
    expect(uncaught).toEqual([])
    const got = forTopic(topic)[0]
    expect(got?.headers['ce-partitionkey']).toBe('%C5%81%C3%B3d%C5%BA')
    expect(decodeURIComponent(got?.headers['ce-partitionkey'] as string)).toBe(key)
  })

  it('root cause: a header http.request refuses fails that call only; its timer throws nothing later', async () => {
    const call = callWebhook({
      url: new URL(hook.url),
      body: Buffer.from('{}'),
      headers: { 'ce-partitionkey': 'Łódź' },
      timeoutMs: 50,
      agent: new Agent(),
      policy: createWebhookPolicy(['127.0.0.1']),
    })
    await expect(call).rejects.toThrow(/Invalid character in header content/)
    await sleep(150)
    expect(uncaught).toEqual([])
  })

  it('a key with CR/LF is refused with 400 INVALID_KEY before anything is accepted', async () => {
    const topic = unique('keys')
    await subscribe(topic)
    const answer = await bridge.call(`/v1/topics/${topic}?key=${encodeURIComponent('a\r\nb')}`, { json: {} })
    expectError(answer).toMatchObject({ status: 400, code: 'INVALID_KEY', message: expect.stringContaining('key') })
    await sleep(400)
    expect(uncaught).toEqual([])
    expect(forTopic(topic)).toEqual([])
  })
})

describe('#13 defect 2: attributes and headers that a webhook call would have dropped', () => {
  it('a CloudEvents type or extension with CR/LF is refused with 400 naming the attribute', async () => {
    const topic = unique('ce')
    const event = { specversion: '1.0', id: '1', source: '/s', type: topic, data: {} }
    const badType = await bridge.call(`/v1/topics/${topic}`, {
      body: JSON.stringify({ ...event, type: 'a\r\nb' }),
      headers: { 'content-type': 'application/cloudevents+json' },
    })
    expectError(badType).toMatchObject({
      status: 400,
      code: 'INVALID_CLOUDEVENT',
      message: expect.stringMatching(/type.*control character/),
    })
    const badExtension = await bridge.call(`/v1/topics/${topic}`, {
      body: JSON.stringify({ ...event, tenant: 'x\ny' }),
      headers: { 'content-type': 'application/cloudevents+json' },
    })
    expectError(badExtension).toMatchObject({
      status: 400,
      code: 'INVALID_CLOUDEVENT',
      message: expect.stringMatching(/tenant.*control character/),
    })
  })

  it('a binary-mode extension named data (which SSE frames would overwrite) is refused', async () => {
    const answer = await bridge.call(`/v1/topics/${unique('ce')}`, {
      json: { n: 1 },
      headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/s', 'ce-type': 't', 'ce-data': 'x' },
    })
    expectError(answer).toMatchObject({
      status: 400,
      code: 'INVALID_CLOUDEVENT',
      message: expect.stringContaining('ce-data'),
    })
  })

  it('a /batch entry header with CR/LF is refused for that entry, naming the header', async () => {
    const topic = unique('batch')
    const answer = await bridge.call(`/v1/topics/${topic}/batch`, {
      json: { messages: [{ data: 1, headers: { 'x-note': 'a\r\nb' } }, { data: 2 }] },
    })
    expect(answer.status).toBe(207)
    expect(answer.body.results[0]).toMatchObject({
      status: 400,
      error: { code: 'INVALID_HEADER', message: expect.stringContaining('x-note') },
    })
  })

  it('a non-ASCII extension is accepted and arrives intact (percent-encoded per the HTTP binding)', async () => {
    const topic = unique('ce')
    await subscribe(topic)
    const answer = await bridge.call(`/v1/topics/${topic}`, {
      body: JSON.stringify({ specversion: '1.0', id: '2', source: '/s', type: topic, city: 'Łódź 50%', data: {} }),
      headers: { 'content-type': 'application/cloudevents+json' },
    })
    expect(answer.status).toBe(202)
    await until(() => forTopic(topic).length > 0, 3_000, 'the webhook call')
    expect(decodeURIComponent(forTopic(topic)[0]?.headers['ce-city'] as string)).toBe('Łódź 50%')
  })
})

describe('#13 defect 3: deeply nested JSON', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`

  it('is refused with 400 JSON_TOO_DEEP naming the limit; JSON at the limit reaches an SSE stream', async () => {
    const topic = unique('deep')
    const deep = await bridge.call(`/v1/topics/${topic}`, {
      body: nested(10_000),
      headers: { 'content-type': 'application/json' },
    })
    expectError(deep).toMatchObject({
      status: 400,
      code: 'JSON_TOO_DEEP',
      message: expect.stringContaining('limits.jsonDepth'),
    })
    const stream = await sse(`${bridge.base}/v1/topics/${topic}/events?access_token=${ADMIN}`)
    expect(stream.status).toBe(200)
    const atLimit = await bridge.call(`/v1/topics/${topic}`, {
      body: nested(64),
      headers: { 'content-type': 'application/json' },
    })
    expect(atLimit.status).toBe(202)
    await until(() => stream.events.length > 0, 3_000, 'the SSE event')
    stream.close()
    expect(JSON.stringify(JSON.parse(stream.events[0]?.data as string).data)).toBe(nested(64))
  })

  it('a message too deep to serialize (published around the bridge) goes out as data_base64, not dropped', () => {
    const raw = Buffer.from(nested(20_000))
    const text = toCloudEventJson({
      id: 'x',
      key: undefined,
      headers: { 'ce-source': '/s', 'ce-type': 't', 'content-type': 'application/json' },
      raw,
      publishedAt: new Date(),
    } as unknown as Message<Uint8Array>)
    // Node 20-24 cannot JSON.stringify 20,000 levels (the bytes go as data_base64); Node 26 can.
    const event = JSON.parse(text) as { data?: unknown; data_base64?: string }
    const carried =
      event.data_base64 !== undefined
        ? Buffer.from(event.data_base64, 'base64')
        : Buffer.from(JSON.stringify(event.data))
    expect(carried.equals(raw)).toBe(true)
  })
})

describe('#13 defect 4: consumer groups', () => {
  it("an SSE client cannot join a webhook subscription's internal group", async () => {
    const topic = unique('orders')
    const id = await subscribe(topic)
    const group = (await bridge.call(`/v1/subscriptions/${id}`)).body.group as string
    const stream = await sse(`${bridge.base}/v1/topics/${topic}/events?group=${group}&access_token=${ADMIN}`)
    stream.close()
    expect(stream.status).toBe(400)
  })

  it('an SSE group never shares messages with a webhook group of the same name', async () => {
    const topic = unique('orders')
    await subscribe(topic, { group: 'shared' })
    const stream = await sse(`${bridge.base}/v1/topics/${topic}/events?group=shared&access_token=${READER}`)
    expect(stream.status).toBe(200)
    for (let i = 0; i < 10; i++) expect((await bridge.call(`/v1/topics/${topic}`, { json: { i } })).status).toBe(202)
    await until(() => forTopic(topic).length >= 10 && stream.events.length >= 10, 3_000, 'both consumers')
    stream.close()
  })

  it('a webhook subscription cannot name a reserved group', async () => {
    const answer = await bridge.call('/v1/subscriptions', {
      json: { topic: unique('orders'), url: hook.url, group: 'backplane-bridge-webhook-x' },
    })
    expectError(answer).toMatchObject({
      status: 400,
      code: 'INVALID_REQUEST',
      message: expect.stringContaining('group'),
    })
  })

  it('a key reads only the topics its scopes allow', async () => {
    const stream = await sse(`${bridge.base}/v1/topics/audit.x/events?access_token=${READER}`)
    stream.close()
    expect(stream.status).toBe(403)
  })
})

describe('#13 defect 5: malformed HTTP', () => {
  let server: BridgeServer
  afterAll(async () => server?.close())

  async function raw(text: string): Promise<string> {
    server ??= await startBridgeServer({
      config: {
        options: { brokers: { main: bus }, store: false, insecure: true },
        listen: { host: '127.0.0.1', port: 0 },
      },
    })
    return new Promise((resolve) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write(text))
      let got = ''
      socket.on('data', (chunk) => {
        got += chunk
      })
      socket.on('close', () => resolve(got))
      socket.on('error', () => resolve(got))
    })
  }

  it.each([
    ['bare CR', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'],
    ['bare LF', 'GET /healthz HTTP/1.1\nHost: x\r\nX-A: ab\r\n\r\n'],
    ['obs-fold', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
    ['NUL', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n'],
  ])('%s: 400 with a JSON error body', async (_, request) => {
    const text = await raw(request)
    expect(text).toMatch(/^HTTP\/1.1 400 /)
    expect(text.toLowerCase()).toContain('content-type: application/json')
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    expect(body.error).toMatchObject({ code: 'MALFORMED_HTTP', message: expect.stringMatching(/.{10}/) })
  })
})

describe('#13: the broker sees what was accepted', () => {
  it('a key of any Unicode travels as is on the broker', async () => {
    const topic = unique('keys')
    const got: Message<unknown>[] = []
    const sub = await (bridge.bridge.brokers.get('main') as Broker).subscribe(topic, (m) => void got.push(m), {
      group: 'check',
    })
    const key = 'Łódź 🚀 %41'
    expect((await bridge.call(`/v1/topics/${topic}?key=${encodeURIComponent(key)}`, { json: 1 })).status).toBe(202)
    await until(() => got.length > 0, 3_000, 'the message')
    await sub.close()
    expect(got[0]?.key).toBe(key)
  })
})
