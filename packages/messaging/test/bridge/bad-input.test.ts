/** Bad requests get the right 4xx and a clear message; the bridge stays up and loses nothing it accepted. */
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { createBridge } from '../../src/bridge/index.js'
import type { Broker, Message } from '../../src/index.js'
import { receiver, sleep, startBridge, unique, until } from './helpers.js'

const ADMIN = 'admin-key-0123456789abcdef'
const READER = 'reader-key-0123456789abcdef'
const hook = await receiver()
const bridge = await startBridge(
  {
    brokers: { main: `memory://bad-${randomUUID().slice(0, 8)}`, other: 'memory://bad-other' },
    auth: {
      keys: [
        { id: 'admin', key: ADMIN, publish: ['*'], subscribe: ['*'] },
        { id: 'reader', key: READER, publish: [], subscribe: ['orders.*'] },
      ],
    },
    topics: ['orders.*', 'audit.*', 'other:*'],
    limits: { bodyBytes: 1024, requestTimeout: '400ms', batchMessages: 10 },
    webhooks: { allow: ['127.0.0.1'] },
    subscriptions: [{ id: 'declared', topic: 'audit.declared', url: hook.url }],
    store: false,
  },
  ADMIN,
)
afterAll(async () => {
  await bridge.close()
  await hook.stop()
})

function expectError(
  answer: { status: number; body: { error?: { code: string; message: string } } },
  status: number,
  code: string,
) {
  expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code })
  expect(answer.body.error?.message.length).toBeGreaterThan(10)
}

describe('bad input', () => {
  it('malformed JSON, wrong or missing content type, an invalid CloudEvent', async () => {
    const t = unique('orders')
    expectError(
      await bridge.call(`/v1/topics/${t}`, { body: '{"a":', headers: { 'content-type': 'application/json' } }),
      400,
      'INVALID_JSON',
    )
    expectError(
      await bridge.call(`/v1/topics/${t}`, { body: '', headers: { 'content-type': 'application/json' } }),
      400,
      'INVALID_JSON',
    )
    expectError(await bridge.call(`/v1/topics/${t}`, { body: Buffer.from('hello') }), 415, 'UNSUPPORTED_MEDIA_TYPE')
    expectError(
      await bridge.call('/v1/subscriptions', {
        body: 'topic=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    )
    expectError(
      await bridge.call(`/v1/topics/${t}/batch`, { body: 'x', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    )
    const noId = await bridge.call(`/v1/topics/${t}`, {
      body: JSON.stringify({ specversion: '1.0', source: '/s', type: 't', data: {} }),
      headers: { 'content-type': 'application/cloudevents+json' },
    })
    expectError(noId, 400, 'INVALID_CLOUDEVENT')
    expect(noId.body.error.message).toContain('id')
    expectError(
      await bridge.call(`/v1/topics/${t}`, {
        json: {},
        headers: { 'ce-specversion': '0.3', 'ce-id': '1', 'ce-source': '/s', 'ce-type': 't' },
      }),
      400,
      'INVALID_CLOUDEVENT',
    )
    // Any other media type is published as it is.
    expect(
      (await bridge.call(`/v1/topics/${t}`, { body: 'plain text', headers: { 'content-type': 'text/plain' } })).status,
    ).toBe(202)
  })

  it('a body over the limit (declared or streamed), a batch over the limit', async () => {
    const t = unique('orders')
    const big = JSON.stringify({ blob: 'x'.repeat(2000) })
    const declared = await bridge.call(`/v1/topics/${t}`, {
      body: big,
      headers: { 'content-type': 'application/json' },
    })
    expectError(declared, 413, 'PAYLOAD_TOO_LARGE')
    expect(declared.body.error.message).toContain('1024 bytes')
    const streamed = await fetch(`${bridge.base}/v1/topics/${t}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big))
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    expect(streamed.status).toBe(413)
    const batch = await bridge.call(`/v1/topics/${t}/batch`, {
      json: { messages: Array.from({ length: 11 }, (_, i) => ({ data: i })) },
    })
    expectError(batch, 413, 'BATCH_TOO_LARGE')
  })

  it('a missing, malformed or unknown API key; a key without the scope', async () => {
    const t = unique('orders')
    const missing = await bridge.call(`/v1/topics/${t}`, { json: {}, key: '', headers: { authorization: '' } })
    expect(missing.status).toBe(401)
    const none = await fetch(`${bridge.base}/v1/topics/${t}`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    })
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    expect(((await none.json()) as { error: unknown }).error).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('Bearer'),
    })
    expectError(
      await bridge.call(`/v1/topics/${t}`, { json: {}, headers: { authorization: 'Basic abc' } }),
      401,
      'UNAUTHENTICATED',
    )
    expectError(await bridge.call(`/v1/topics/${t}`, { json: {}, key: 'not-a-key-0123456789' }), 401, 'UNAUTHENTICATED')
    const forbidden = await bridge.call(`/v1/topics/${t}`, { json: {}, key: READER })
    expectError(forbidden, 403, 'FORBIDDEN')
    expect(forbidden.body.error.message).toContain(`"reader" may not publish to main:${t}`)
    expectError(
      await bridge.call('/v1/subscriptions', { json: { topic: 'audit.x', url: hook.url }, key: READER }),
      403,
      'FORBIDDEN',
    )
    const stream = await fetch(`${bridge.base}/v1/topics/audit.x/events?access_token=${READER}`)
    expect(stream.status).toBe(403)
    // The reader sees only what its scopes cover.
    const list = await bridge.call('/v1/subscriptions', { key: READER })
    expect(list.body.subscriptions).toEqual([])
  })

  it('webhook URLs outside the allowlist, link-local and metadata addresses, other schemes', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      'http://[fe80::1]/',
      'http://10.1.2.3/hook',
      'http://0.0.0.0:8080/',
      'http://example.com/hook',
      'ftp://127.0.0.1/hook',
    ]) {
      const answer = await bridge.call('/v1/subscriptions', { json: { topic: 'orders.hooks', url } })
      expectError(answer, 400, 'WEBHOOK_URL_NOT_ALLOWED')
      expect(answer.body.error.message).toContain(url)
    }
    expectError(
      await bridge.call('/v1/subscriptions', { json: { topic: 'orders.hooks', url: 'not a url' } }),
      400,
      'INVALID_REQUEST',
    )
  })

  it('unknown brokers, topics outside the allowlist, invalid names and fields, wrong methods and paths', async () => {
    const route = await bridge.call('/v1/routes', { json: { source: 'orders.a', destinations: ['kafka:orders'] } })
    expectError(route, 400, 'UNKNOWN_BROKER')
    expect(route.body.error.message).toContain('"main", "other"')
    expectError(await bridge.call('/v1/topics/payments.x', { json: {} }), 404, 'UNKNOWN_TOPIC')
    expectError(await bridge.call('/v1/topics/orders..x', { json: {} }), 400, 'INVALID_TOPIC')
    expectError(await bridge.call('/v1/topics/orders.%E0%A4%A', { json: {} }), 400, 'INVALID_REQUEST')
    const fields = await bridge.call('/v1/subscriptions', {
      json: { topic: 'orders.x', uri: hook.url, maxAttempts: 0 },
    })
    expectError(fields, 400, 'INVALID_REQUEST')
    expect(fields.body.error.details).toEqual(
      expect.arrayContaining([
        expect.stringContaining('url'),
        expect.stringContaining('maxAttempts'),
        expect.stringContaining('"uri"'),
      ]),
    )
    const loop = await bridge.call('/v1/routes', { json: { source: 'orders.a', destinations: ['orders.a'] } })
    expectError(loop, 400, 'ROUTE_LOOP')
    const method = await bridge.call('/v1/topics/orders.x', { method: 'PUT', body: '{}' })
    expectError(method, 405, 'METHOD_NOT_ALLOWED')
    expect(method.headers.get('allow')).toBe('POST')
    expectError(await bridge.call('/v2/whatever'), 404, 'NOT_FOUND')
    expectError(await bridge.call('/v1/subscriptions/declared', { method: 'DELETE' }), 409, 'DECLARED_IN_CONFIG')
    expectError(await bridge.call('/v1/subscriptions/nope', { method: 'DELETE' }), 404, 'NOT_FOUND')
  })

  it('a batch with bad entries publishes the good ones and says, per message, what happened', async () => {
    const t = unique('orders')
    const answer = await bridge.call(`/v1/topics/${t}/batch`, {
      json: {
        messages: [
          { data: 1 },
          { data: 2, unknown: true },
          { data_base64: 'AQID', contentType: 'application/octet-stream' },
          { contentType: 'text/plain', data: {} },
        ],
      },
    })
    expect(answer.status).toBe(207)
    expect(answer.body).toMatchObject({ accepted: 2, rejected: 2 })
    expect(answer.body.results.map((r: { status: number }) => r.status)).toEqual([202, 400, 202, 400])
    expect(answer.body.results[1].error.message).toContain('"unknown"')
  })

  it('a request that is not received in time gets 408', async () => {
    const url = new URL(bridge.base)
    const text = await new Promise<string>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST /v1/topics/orders.slow HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":`,
        )
      })
      let got = ''
      socket.on('data', (chunk) => {
        got += chunk
      })
      socket.on('close', () => resolve(got))
      socket.on('error', () => resolve(got))
    })
    expect(text).toMatch(/^HTTP\/1.1 408/)
    expect(text).toContain('REQUEST_TIMEOUT')
  })

  it('stays up under a mix of bad and good requests, and every accepted message is delivered once', async () => {
    const t = unique('orders')
    const got: Message<unknown>[] = []
    const broker = bridge.bridge.brokers.get('main') as Broker
    const sub = await broker.subscribe(t, (m) => void got.push(m), { group: 'check' })
    const requests = Array.from({ length: 200 }, (_, i) => {
      switch (i % 5) {
        case 0:
          return bridge.call(`/v1/topics/${t}`, { body: '{"broken', headers: { 'content-type': 'application/json' } })
        case 1:
          return bridge.call(`/v1/topics/${t}`, { json: { blob: 'y'.repeat(3000) } })
        case 2:
          return bridge.call(`/v1/topics/${t}`, { json: { i }, key: 'wrong-key-0123456789' })
        default:
          return bridge.call(`/v1/topics/${t}`, { json: { i } })
      }
    })
    const answers = await Promise.all(requests)
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.body.id as string)
    expect(accepted).toHaveLength(80)
    expect(answers.filter((a) => a.status >= 500)).toEqual([])
    await until(() => got.length >= accepted.length, 5_000, 'every accepted message')
    await sleep(100)
    await sub.close()
    expect(got.map((m) => m.id).sort()).toEqual(accepted.sort())
    expect((await bridge.call('/healthz')).status).toBe(200)
    expect((await bridge.call('/readyz')).body).toMatchObject({ status: 'ready', brokers: { main: 'connected' } })
  })
})

describe('bad options', () => {
  it('refuses to create a bridge without keys unless insecure, and names every wrong option', () => {
    expect(() => createBridge({ brokers: { main: 'memory://' }, store: false })).toThrow(
      /no API keys: set auth.keys, or insecure: true/,
    )
    expect(() =>
      createBridge({
        brokers: { main: 'memory://' },
        insecure: true,
        store: false,
        limits: { bodyBytes: -1 },
        subscriptions: [{ topic: 'a', url: 'http://169.254.169.254/' }],
      } as never),
    ).toThrow(/limits.bodyBytes/)
    expect(() =>
      createBridge({
        brokers: { main: 'memory://' },
        insecure: true,
        store: false,
        routes: [
          { source: 'a', destinations: ['b'] },
          { source: 'b', destinations: ['a'] },
        ],
      }),
    ).toThrow(/loop: main:a → main:b → main:a/)
    expect(() =>
      createBridge({
        brokers: { main: 'memory://' },
        insecure: true,
        store: false,
        subscriptions: [{ topic: 'a', url: 'http://169.254.169.254/' }],
      }),
    ).toThrow(/subscriptions\[0\].*link-local/)
  })
})
