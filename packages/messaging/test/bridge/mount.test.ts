/** The bridge mounted in an Express app and in a Fastify app, next to the app's own routes. */
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { type Bridge, createBridge } from '../../src/bridge/index.js'
import type { Broker, Message } from '../../src/index.js'
import { listen, sse, unique, until } from './helpers.js'

const KEY = 'mount-key-0123456789abcdef'
const options = (basePath?: string) => ({
  brokers: { main: `memory://mount-${randomUUID().slice(0, 8)}` },
  auth: { keys: [{ id: 'app', key: KEY, publish: ['*'], subscribe: ['*'] }] },
  store: false as const,
  ...(basePath ? { basePath } : {}),
})
const auth = { authorization: `Bearer ${KEY}` }
const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

async function exercise(base: string, bridge: Bridge) {
  const topic = unique('mounted')
  const got: Message<unknown>[] = []
  const sub = await (bridge.brokers.get('main') as Broker).subscribe(topic, (m) => void got.push(m))
  const stream = await sse(`${base}/bridge/v1/topics/${topic}/events`, auth)
  expect(stream.status).toBe(200)
  await until(() => stream.comments.includes('ready'), 5_000, 'the stream')
  const published = await fetch(`${base}/bridge/v1/topics/${topic}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ via: 'app' }),
  })
  expect(published.status).toBe(202)
  const { id } = (await published.json()) as { id: string }
  await until(() => got.length === 1 && stream.events.length === 1, 5_000, 'the message')
  expect(got[0]).toMatchObject({ id, data: { via: 'app' } })
  expect(stream.events[0]?.id).toBe(id)
  stream.close()
  await sub.close()
  expect((await fetch(`${base}/bridge/healthz`)).status).toBe(200)
  const bad = await fetch(`${base}/bridge/v1/topics/${topic}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: '{',
  })
  expect(bad.status).toBe(400)
  expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_JSON')
  // The app's own routes are untouched.
  expect(await (await fetch(`${base}/hello`)).text()).toBe('hello from the app')
}

describe('mounted', () => {
  it('in Express: app.use("/bridge", bridge.handler)', async () => {
    const bridge = createBridge(options())
    closers.push(() => bridge.close())
    const app = express()
    app.use('/bridge', bridge.handler)
    app.use(express.json())
    app.get('/hello', (_req, res) => {
      res.send('hello from the app')
    })
    const server: Server = app.listen(0, '127.0.0.1')
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    const port = await new Promise<number>((resolve) =>
      server.once('listening', () => resolve((server.address() as { port: number }).port)),
    )
    await bridge.ready
    await exercise(`http://127.0.0.1:${port}`, bridge)
    // Paths under /bridge that the bridge does not serve go on to Express (its 404 here).
    const unknown = await fetch(`http://127.0.0.1:${port}/bridge/elsewhere`)
    expect(unknown.status).toBe(404)
    expect(unknown.headers.get('content-type')).toContain('text/html')
  })

  it('in Express, after a JSON body parser that already read the body', async () => {
    const bridge = createBridge(options())
    closers.push(() => bridge.close())
    const app = express()
    app.use(express.json())
    app.use('/bridge', bridge.handler)
    const server: Server = app.listen(0, '127.0.0.1')
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    const port = await new Promise<number>((resolve) =>
      server.once('listening', () => resolve((server.address() as { port: number }).port)),
    )
    await bridge.ready
    const topic = unique('parsed')
    const got: Message<unknown>[] = []
    const sub = await (bridge.brokers.get('main') as Broker).subscribe(topic, (m) => void got.push(m))
    const answer = await fetch(`http://127.0.0.1:${port}/bridge/v1/topics/${topic}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1 }),
    })
    expect(answer.status).toBe(202)
    await until(() => got.length === 1, 5_000, 'the message')
    expect(got[0]?.data).toEqual({ n: 1 })
    await sub.close()
  })

  it('in Fastify: a route that hijacks the reply, in a scope without body parsers', async () => {
    const bridge = createBridge(options('/bridge'))
    closers.push(() => bridge.close())
    const app = Fastify()
    await app.register(async (scope) => {
      // Leave the body to the bridge: no parsing (and no 415) by Fastify in this scope.
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null))
      scope.all('/bridge/*', (request, reply) => {
        reply.hijack()
        bridge.handler(request.raw, reply.raw)
      })
    })
    app.get('/hello', async () => 'hello from the app')
    const server = app.server
    closers.push(() => app.close())
    await app.ready()
    const port = await listen(server)
    await bridge.ready
    await exercise(`http://127.0.0.1:${port}`, bridge)
  })
})
