import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createReader, type Engine, memoryStore, WorkflowError } from '../src/index.js'
import { createInspector, type Inspector } from '../src/ui/index.js'
import { HOSTILE, seedOrders, serve, shopOrder } from './helpers/inspector.js'

const store = memoryStore()
let engine: Engine
let inspector: Inspector
let server: Awaited<ReturnType<typeof serve>>
let base: string

beforeAll(async () => {
  engine = await seedOrders(store)
  inspector = createInspector({ reader: createReader({ store }), machines: [shopOrder], basePath: '/workflows' })
  server = await serve((req, res) => inspector(req, res))
  base = `${server.url}/workflows`
})

afterAll(async () => {
  await inspector.close()
  await server.close()
  await engine.close()
})

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${base}${path}`, { redirect: 'manual', ...init })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) }
}

describe('the inspector API', () => {
  it('counts instances per machine, version, state and status, and names the machines it was given', async () => {
    const { status, json } = await get('/api/counts')
    expect(status).toBe(200)
    expect(json()).toEqual({
      machines: [{ id: 'order', version: 1 }],
      counts: [
        { machine: 'order', version: 1, state: 'created', status: 'running', count: 1 },
        { machine: 'order', version: 1, state: 'delivered', status: 'done', count: 1 },
        { machine: 'order', version: 1, state: 'paying', status: 'failed', count: 1 },
        { machine: 'order', version: 1, state: 'shipping', status: 'running', count: 2 },
      ],
    })
    expect((await get('/api/counts?status=failed')).json().counts).toHaveLength(1)
  })

  it('lists instances in pages, without their context', async () => {
    const first = (await get('/api/instances?limit=2')).json()
    expect(first.instances.map((i: { id: string }) => i.id)).toEqual(['o-1', 'o-2'])
    expect(first.next).toBe('o-2')
    expect(first.instances[0]).not.toHaveProperty('context')
    const rest = (await get(`/api/instances?limit=10&after=${first.next}`)).json()
    expect(rest).toMatchObject({ next: null })
    expect(rest.instances.map((i: { id: string }) => i.id)).toEqual(['o-3', 'o-4', 'o-5'])
    const shipping = (await get('/api/instances?machine=order&version=1&state=shipping&status=running')).json()
    expect(shipping.instances.map((i: { id: string }) => i.id)).toEqual(['o-2', 'o-5'])
  })

  it('shows one instance whole with its history; its context comes back as data, exactly', async () => {
    const { instance, history } = (await get('/api/instances/o-2')).json()
    expect(instance).toMatchObject({ id: 'o-2', state: 'shipping', status: 'running', context: { chargeId: 'ch-o-2' } })
    expect(instance.timers).toEqual([{ delay: '2h', deadline: expect.any(String) }])
    expect(history.map((h: { kind: string }) => h.kind)).toEqual(['start', 'event', 'activity.done'])
    expect((await get('/api/instances/o-2/history')).json().history).toEqual(history)
    expect((await get('/api/instances/o-5')).json().instance.context.note).toBe(HOSTILE)
    const failed = (await get('/api/instances/o-3')).json().instance
    expect(failed.failure).toMatchObject({ activity: 'charge', message: expect.stringContaining('card declined') })
    expect(failed.tasks.map((t: { activity: string }) => t.activity)).toEqual(['charge'])
  })

  it('draws the diagram of a machine version, laid out', async () => {
    const diagram = (await get('/api/diagram?machine=order&version=1')).json()
    expect(diagram.source).toBe('definition')
    expect(diagram.nodes.map((n: { name: string }) => n.name).sort()).toEqual(
      ['cancelled', 'created', 'delivered', 'paying', 'shipping'].sort(),
    )
    expect(diagram.anywhere).toEqual([{ label: 'CANCEL', to: 'cancelled' }])
  })

  it('answers errors as JSON: 400 for a bad query, 404 for an unknown instance or route, 405 for anything but GET', async () => {
    const bad = await get('/api/instances?limit=0&status=asleep&colour=red&after=a&after=b')
    expect(bad.status).toBe(400)
    expect(bad.json().error.code).toBe('INVALID_QUERY')
    for (const part of ['limit', 'status', 'colour', 'after: given more than once'])
      expect(bad.json().error.message).toContain(part)
    expect((await get('/api/diagram?machine=order')).status).toBe(400)
    expect((await get('/api/instances/%E0%A4%A')).json().error.code).toBe('INVALID_QUERY')
    const unknown = await get('/api/instances/nope')
    expect(unknown.status).toBe(404)
    expect(unknown.json()).toEqual({
      error: { code: 'WORKFLOW_UNKNOWN_INSTANCE', message: 'no workflow instance with id "nope"' },
    })
    expect((await get('/api/stream?instance=nope')).status).toBe(404)
    expect((await get('/api/nothing')).json().error.code).toBe('NOT_FOUND')
    expect((await get('/../../etc/passwd')).status).toBe(404)
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await get('/api/counts', { method })
      expect(res.status, method).toBe(405)
      expect(res.headers.get('allow')).toBe('GET')
      expect(res.json().error.code).toBe('METHOD_NOT_ALLOWED')
    }
    expect((await fetch(`${server.url}/elsewhere`)).status).toBe(404)
  })

  it('serves the page at the mount point with a trailing slash, its assets, and a strict content policy', async () => {
    const redirect = await get('')
    expect(redirect.status).toBe(308)
    expect(redirect.headers.get('location')).toBe('workflows/')
    const page = await get('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(page.text).toContain('<script type="module" src="assets/app.js"></script>')
    for (const file of ['app.js', 'dom.js', 'model.js', 'views.js', 'diagram.js']) {
      const script = await get(`/assets/${file}`)
      expect(script.headers.get('content-type'), file).toBe('text/javascript; charset=utf-8')
      // Data goes on the page as text only.
      expect(script.text, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/)
    }
    const js = await get('/assets/app.js')
    expect((await get('/assets/app.js', { headers: { 'if-none-match': js.headers.get('etag') ?? '' } })).status).toBe(
      304,
    )
    expect((await get('/assets/app.css')).headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect((await get('/assets/index.html')).status).toBe(404)
    expect((await get('/assets/../package.json')).status).toBe(404)
  })

  it('takes a store or a reader, not both, and checks its options', () => {
    const fails = (options: unknown) => {
      try {
        createInspector(options as never)
        return undefined
      } catch (error) {
        return WorkflowError.is(error, 'WORKFLOW_INVALID_OPTIONS') ? error.message : error
      }
    }
    expect(fails({})).toContain('expected either store or reader')
    expect(fails({ store, reader: createReader({ store }) })).toContain('expected either store or reader')
    expect(fails({ store, basePath: 'workflows/' })).toContain('basePath')
    expect(fails({ store, pollInterval: 'often' })).toContain('pollInterval')
    expect(fails({ store, machines: [{}] })).toContain('defineMachine')
  })
})

/** A request and a response good enough for the listener, for URLs no HTTP client would send. */
function exchange(method: string, url: string) {
  const req = Object.assign(new EventEmitter(), { method, url, headers: {} }) as unknown as IncomingMessage
  let status = 0
  let body = ''
  const done = new Promise<void>((resolve) => {
    const res = new EventEmitter() as EventEmitter & Record<string, unknown>
    Object.assign(res, {
      headersSent: false,
      writableNeedDrain: false,
      writeHead(code: number) {
        status = code
        res.headersSent = true
        return res
      },
      write(chunk: string) {
        body += chunk
        return true
      },
      end(chunk?: string | Buffer) {
        if (chunk) body += chunk.toString()
        resolve()
        res.emit('close')
      },
    })
    inspector(req, res as unknown as ServerResponse)
  })
  return done.then(() => ({ status, body }))
}

describe('the inspector under hostile input', () => {
  it('answers any path and query with a status and a JSON error, never a crash or a 500', async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        'api',
        'instances',
        'counts',
        'diagram',
        'assets',
        'app.js',
        'o-2',
        'history',
        '..',
        '',
        '%',
        '%zz',
      ),
      fc.string({ maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
    )
    const key = fc.constantFrom('machine', 'version', 'state', 'status', 'limit', 'after', 'instance', 'x', '')
    const value = fc.oneof(
      fc.constantFrom('order', '1', '0', '-1', '1e3', '99999999999', 'running', 'failed', '', '%', '%FF'),
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
    )
    const url = fc
      .tuple(
        fc.array(segment, { maxLength: 5 }),
        fc.array(fc.tuple(key, value), { maxLength: 5 }),
        fc.constantFrom('/workflows', '/workflows/', '/workflows/api/', '/'),
      )
      .map(
        ([segments, params, prefix]) =>
          `${prefix}${segments.join('/')}${params.length ? `?${params.map(([k, v]) => `${k}=${v}`).join('&')}` : ''}`,
      )
    await fc.assert(
      fc.asyncProperty(url, fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD', 'OPTIONS'), async (path, method) => {
        // Streams stay open: they are covered by the live tests.
        if (/\/api\/stream(\?|$)/.test(path)) return
        const { status, body } = await exchange(method, path)
        expect([200, 304, 308, 400, 404, 405]).toContain(status)
        if (status >= 400) expect(JSON.parse(body).error.code).toMatch(/^[A-Z_]+$/)
      }),
      { numRuns: 600 },
    )
    // Still answering.
    expect((await get('/api/counts')).status).toBe(200)
  })
})
