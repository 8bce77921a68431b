/** Test helpers for the HTTP bridge: a bridge on a real port, a webhook receiver, an SSE client. */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Bridge, type BridgeOptions, createBridge } from '../../src/bridge/index.js'

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function until(predicate: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

export const unique = (what: string) => `${what}.${randomUUID().slice(0, 8)}`

export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

/** A port nothing listens on (yet). */
export async function freePort(): Promise<number> {
  const server = createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field in the tests
type Json = any

export interface RunningBridge {
  bridge: Bridge
  base: string
  server: Server
  /** fetch against the bridge, with the JSON body and key given. */
  call(
    path: string,
    init?: { method?: string; json?: unknown; body?: string | Buffer; headers?: Record<string, string>; key?: string },
  ): Promise<{ status: number; body: Json; headers: Headers }>
  close(): Promise<void>
}

export async function startBridge(options: BridgeOptions, defaultKey?: string): Promise<RunningBridge> {
  const bridge = createBridge(options)
  const server = createServer(bridge.handler)
  const port = await listen(server)
  await bridge.ready
  const base = `http://127.0.0.1:${port}`
  return {
    bridge,
    base,
    server,
    async call(path, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) }
      const key = init.key ?? defaultKey
      if (key !== undefined && headers.authorization === undefined) headers.authorization = `Bearer ${key}`
      let body: string | Buffer | undefined = init.body
      if (init.json !== undefined) {
        body = JSON.stringify(init.json)
        headers['content-type'] ??= 'application/json'
      }
      const response = await fetch(`${base}${path}`, {
        method: init.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        ...(body === undefined ? {} : { body }),
      })
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {}
      return { status: response.status, body: parsed as Json, headers: response.headers }
    },
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await bridge.close()
    },
  }
}

export interface Received {
  headers: IncomingMessage['headers']
  body: Buffer
  at: number
}

export interface Receiver {
  url: string
  port: number
  received: Received[]
  /** What to answer: a status, or a function of the request. Default 200. */
  answer: (request: Received) => number | { status: number; headers?: Record<string, string> }
  stop(): Promise<void>
  start(): Promise<void>
}

/** A webhook receiver on 127.0.0.1 that records every call. */
export async function receiver(port?: number, path = '/hook'): Promise<Receiver> {
  let server: Server | undefined
  const r: Receiver = {
    url: '',
    port: port ?? 0,
    received: [],
    answer: () => 200,
    async start() {
      server = createServer((request: IncomingMessage, response: ServerResponse) => {
        const chunks: Buffer[] = []
        request.on('data', (c: Buffer) => chunks.push(c))
        request.on('end', () => {
          const got: Received = { headers: request.headers, body: Buffer.concat(chunks), at: Date.now() }
          r.received.push(got)
          const a = r.answer(got)
          const { status, headers } = typeof a === 'number' ? { status: a, headers: {} } : a
          response.writeHead(status, headers ?? {})
          response.end(status >= 400 ? `failure ${status}` : '')
        })
      })
      r.port = await listen(server, r.port)
      r.url = `http://127.0.0.1:${r.port}${path}`
    },
    async stop() {
      if (!server) return
      const s = server
      server = undefined
      s.closeAllConnections()
      await new Promise((resolve) => s.close(resolve))
    },
  }
  if (port === undefined) await r.start()
  else r.url = `http://127.0.0.1:${port}${path}`
  return r
}

export interface SseEvent {
  id: string | undefined
  event: string | undefined
  data: string
}

export interface SseClient {
  status: number
  events: SseEvent[]
  comments: string[]
  close(): void
}

/** A minimal EventSource over fetch: parses `id:`, `event:`, `data:` and comment lines. */
export async function sse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const abort = new AbortController()
  const response = await fetch(url, { headers, signal: abort.signal })
  const client: SseClient = { status: response.status, events: [], comments: [], close: () => abort.abort() }
  if (!response.body || response.status !== 200) return client
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  void (async () => {
    let current: SseEvent = { id: undefined, event: undefined, data: '' }
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let newline = buffer.indexOf('\n')
        while (newline !== -1) {
          const line = buffer.slice(0, newline)
          buffer = buffer.slice(newline + 1)
          if (line === '') {
            if (current.data !== '' || current.event !== undefined) client.events.push(current)
            current = { id: undefined, event: undefined, data: '' }
          } else if (line.startsWith(':')) client.comments.push(line.slice(1).trim())
          else {
            const colon = line.indexOf(':')
            const field = line.slice(0, colon)
            const value = line.slice(colon + 1).replace(/^ /, '')
            if (field === 'id') current.id = value
            else if (field === 'event') current.event = value
            else if (field === 'data') current.data += current.data === '' ? value : `\n${value}`
          }
          newline = buffer.indexOf('\n')
        }
      }
    } catch {}
  })()
  return client
}
