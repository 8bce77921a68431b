import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger } from '../src/logger.js'
import { openLogger } from '../src/logger.js'
import { installTraceContext } from '../src/trace-context.js'
import { allRecords, tempDir } from './helpers/files.js'
import { type RunningServer, servers } from './helpers/servers.js'

const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const traceparent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/

describe.each(servers)('middleware without an SDK: %o', (start) => {
  let dir: string
  let log: Logger
  let server: RunningServer
  beforeAll(async () => {
    installTraceContext()
    dir = tempDir()
    log = openLogger({ service: 'api', file: { dir } }, { handleExit: false })
    server = await start(log)
  })
  afterAll(async () => {
    await server.close()
    await log.close()
  })

  it('continues the caller trace, answers traceparent, and correlates the handler lines', async () => {
    const response = await fetch(`${server.url}/orders/o-7`, { headers: { traceparent: incoming } })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ id: 'o-7' })
    const [, traceId, spanId] = traceparent.exec(response.headers.get('traceparent') ?? '') ?? []
    expect(traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(spanId).not.toBe('00f067aa0ba902b7') // this server's own span, a child of the caller's
    await log.flush()
    const lines = allRecords(dir, 'api').filter((r) => r.trace_id === traceId)
    expect(lines.map((r) => r.msg)).toEqual(['loading order', 'request completed'])
    expect(lines.every((r) => r.span_id === spanId)).toBe(true)
    expect(lines[1]).toMatchObject({
      level: 30,
      'http.request.method': 'GET',
      'url.path': '/orders/o-7',
      'http.route': '/orders/:id',
      'http.response.status_code': 200,
    })
    expect(lines[1]?.duration_ms).toBeGreaterThan(1)
  })

  it('starts a new trace when the caller sends none', async () => {
    const response = await fetch(`${server.url}/orders/o-8`)
    const [, traceId] = traceparent.exec(response.headers.get('traceparent') ?? '') ?? []
    expect(traceId).toMatch(/^[0-9a-f]{32}$/)
    await log.flush()
    const lines = allRecords(dir, 'api').filter((r) => r.trace_id === traceId)
    expect(lines.map((r) => r.msg)).toEqual(['loading order', 'request completed'])
  })

  it('logs a 5xx completion at error level', async () => {
    const response = await fetch(`${server.url}/fail`, { headers: { traceparent: incoming } })
    expect(response.status).toBe(500)
    await log.flush()
    const line = allRecords(dir, 'api').find((r) => r['url.path'] === '/fail')
    expect(line).toMatchObject({ level: 50, 'http.response.status_code': 500, msg: 'request completed' })
  })
})

describe('fastify body parsing', () => {
  it('runs a POST handler in the request context after the body was parsed', async () => {
    installTraceContext()
    const dir = tempDir()
    const log = openLogger({ service: 'api', file: { dir } }, { handleExit: false })
    const server = await servers[2]?.(log)
    const response = await fetch(`${server?.url}/orders`, {
      method: 'POST',
      headers: { traceparent: incoming, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'o-9' }),
    })
    expect(response.status).toBe(201)
    await server?.close()
    await log.close()
    const created = allRecords(dir, 'api').find((r) => r.msg === 'creating order')
    expect(created).toMatchObject({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', body: { id: 'o-9' } })
  })
})
