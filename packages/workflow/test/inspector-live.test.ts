import express from 'express'
import Fastify from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createReader, type Engine, memoryStore, type Store } from '../src/index.js'
import { createInspector } from '../src/ui/index.js'
import { seedOrders, serve, shopOrder } from './helpers/inspector.js'

const store = memoryStore()
let engine: Engine

beforeAll(async () => {
  engine = await seedOrders(store)
})
afterAll(() => engine.close())

/** Reads server-sent events from `url` until `until` holds for the events so far, or `ms` pass. */
async function events(url: string, until: (seen: { event: string; data: unknown }[]) => boolean, ms = 5000) {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), ms)
  const seen: { event: string; data: unknown }[] = []
  try {
    const res = await fetch(url, { signal: abort.signal })
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true })
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event && data) seen.push({ event, data: JSON.parse(data) })
      }
      if (until(seen)) break
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
  return seen
}

/** A store whose reads are counted: live streams must stop reading once their last client is gone. */
function counted(inner: Store): Store & { reads: () => number } {
  let reads = 0
  const wrapped = Object.create(inner) as Store & { reads: () => number }
  for (const method of ['list', 'load', 'history', 'countInstances'] as const) {
    const original = inner[method]?.bind(inner) as (...args: unknown[]) => Promise<unknown>
    Object.defineProperty(wrapped, method, {
      value: (...args: unknown[]) => {
        reads++
        return original(...args)
      },
    })
  }
  wrapped.reads = () => reads
  return wrapped
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('the inspector live stream', () => {
  it('polls the reader: pushes the counts and the view, then what changed after a send', async () => {
    const watched = counted(store)
    const inspector = createInspector({ reader: createReader({ store: watched }), pollInterval: 100 })
    const server = await serve((req, res) => inspector(req, res))
    try {
      await engine.start(shopOrder, { id: 'live-1', input: { orderId: 'live-1', amount: 1 } })
      setTimeout(() => void engine.send('live-1', { type: 'CANCEL' }), 300)
      const seen = await events(`${server.url}/api/stream?instance=live-1`, (s) =>
        s.some(
          (e) => e.event === 'instance' && (e.data as { instance: { state: string } }).instance.state === 'cancelled',
        ),
      )
      const states = seen
        .filter((e) => e.event === 'instance')
        .map((e) => (e.data as { instance: { state: string } }).instance.state)
      expect(states).toEqual(['created', 'cancelled'])
      expect(seen[0]?.event).toBe('counts')
      // The client went away: the loop stops reading the store.
      await sleep(300)
      const before = watched.reads()
      await sleep(500)
      expect(watched.reads()).toBe(before)
    } finally {
      await inspector.close()
      await server.close()
    }
  })

  it('follows the engine when given one, and lets go of its events when the client goes', async () => {
    const inspector = createInspector({ store, engine, pollInterval: '1h' })
    const server = await serve((req, res) => inspector(req, res))
    const listeners = engine.events.listenerCount('transition')
    try {
      await engine.start(shopOrder, { id: 'live-2', input: { orderId: 'live-2', amount: 1 } })
      setTimeout(() => void engine.send('live-2', { type: 'SUBMIT' }), 300)
      // Polling once an hour: only the engine's transition events can bring these in time.
      const seen = await events(`${server.url}/api/stream?machine=order&state=shipping`, (s) =>
        s.some((e) => e.event === 'list' && JSON.stringify(e.data).includes('live-2')),
      )
      expect(seen.filter((e) => e.event === 'list').length).toBeGreaterThanOrEqual(2)
      expect(JSON.stringify(seen.at(-1)?.data)).toContain('live-2')
      await sleep(200)
      expect(engine.events.listenerCount('transition')).toBe(listeners)
    } finally {
      await inspector.close()
      await server.close()
    }
  })

  it('ends open streams on close() and refuses more than maxStreams', async () => {
    const inspector = createInspector({ store, maxStreams: 1, pollInterval: 50 })
    const server = await serve((req, res) => inspector(req, res))
    try {
      const open = fetch(`${server.url}/api/stream`).then(async (res) => {
        await res.text() // resolves once the stream ends
        return res.status
      })
      await sleep(200)
      const second = await fetch(`${server.url}/api/stream`)
      expect(second.status).toBe(503)
      expect(((await second.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_STREAMS')
      await inspector.close()
      expect(await open).toBe(200)
    } finally {
      await server.close()
    }
  })
})

describe('mounting the inspector', () => {
  it('under Express with app.use(path, inspector): the mount path is taken from Express', async () => {
    const inspector = createInspector({ store, machines: [shopOrder] })
    const app = express()
    app.use('/ops/workflows', inspector)
    app.get('/', (_req, res) => {
      res.send('the app')
    })
    const server = await serve(app)
    try {
      const redirect = await fetch(`${server.url}/ops/workflows`, { redirect: 'manual' })
      expect(redirect.status).toBe(308)
      expect(redirect.headers.get('location')).toBe('workflows/')
      expect(await (await fetch(`${server.url}/ops/workflows/`)).text()).toContain('Workflow inspector')
      const counts = (await (await fetch(`${server.url}/ops/workflows/api/counts`)).json()) as { counts: unknown[] }
      expect(counts.counts.length).toBeGreaterThan(0)
      expect(await (await fetch(`${server.url}/`)).text()).toBe('the app')
    } finally {
      await inspector.close()
      await server.close()
    }
  })

  it('under Fastify through the raw request and response, with basePath', async () => {
    const inspector = createInspector({ store, machines: [shopOrder], basePath: '/workflows' })
    const app = Fastify()
    app.all('/workflows', (req, reply) => {
      reply.hijack()
      inspector(req.raw, reply.raw)
    })
    app.all('/workflows/*', (req, reply) => {
      reply.hijack()
      inspector(req.raw, reply.raw)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    try {
      expect((await fetch(`${url}/workflows`, { redirect: 'manual' })).headers.get('location')).toBe('workflows/')
      expect(await (await fetch(`${url}/workflows/`)).text()).toContain('Workflow inspector')
      const one = (await (await fetch(`${url}/workflows/api/instances/o-2`)).json()) as { instance: { state: string } }
      expect(one.instance.state).toBe('shipping')
      expect((await fetch(`${url}/workflows/api/counts`, { method: 'DELETE' })).status).toBe(405)
    } finally {
      await inspector.close()
      await app.close()
    }
  })
})
