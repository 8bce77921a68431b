/**
 * Issue #13's property: whatever a client sends, over every endpoint, the bridge answers 2xx or
 * 4xx with a JSON body, never crashes, and every message it accepted reaches a webhook and an
 * SSE stream byte-identical, with all its attributes. One suite, run unchanged on memory, NATS
 * and Kafka. FC_SEED and FC_RUNS override the seed and run count; both are printed.
 */
import { connect } from 'node:net'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { answerClientError, type BridgeOptions } from '../../src/bridge/index.js'
import {
  type Receiver,
  type RunningBridge,
  receiver,
  type SseClient,
  sse,
  startBridge,
  unique,
  until,
} from './helpers.js'

export interface HostileHooks {
  broker(): BridgeOptions['brokers'][string]
  /** Runs of each property; FC_RUNS wins. */
  numRuns: number
  /** Multiplies waits. */
  slow?: number
}

const KEY = 'hostile-key-0123456789abcdef'

interface Answer {
  status: number
  headers: string
  body: string
}

/**
 * One request over a raw socket, written in the given chunk sizes: nothing between the test and
 * the bridge's parser normalizes or refuses what is sent.
 */
function rawRequest(port: number, head: Buffer, body: Buffer, cuts: number[], stream = false): Promise<Answer> {
  const bytes: Buffer = Buffer.concat([head, body])
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', async () => {
      let at = 0
      for (const cut of [...cuts, bytes.length]) {
        const end = Math.min(bytes.length, at + Math.max(1, cut))
        if (end > at && !socket.destroyed) socket.write(bytes.subarray(at, end))
        at = end
        await new Promise((r) => setImmediate(r))
        if (at >= bytes.length) break
      }
      if (at < bytes.length && !socket.destroyed) socket.write(bytes.subarray(at))
    })
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer in 15 s')))
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      // An SSE stream never ends: its status line and headers are the answer.
      if (stream && /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/.test(Buffer.concat(chunks).toString('latin1'))) socket.destroy()
    })
    socket.on('error', (error) => {
      // The bridge may answer and close before the whole request was written (413, 400).
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE' && (error as NodeJS.ErrnoException).code !== 'ECONNRESET')
        reject(error)
    })
    socket.on('close', () => {
      const text = Buffer.concat(chunks)
      const split = text.indexOf('\r\n\r\n')
      const headers = text.subarray(0, split).toString('latin1')
      let payload: Buffer = text.subarray(split + 4)
      if (/transfer-encoding: chunked/i.test(headers)) payload = dechunk(payload)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0)
      resolve({ status, headers, body: payload.toString('utf8') })
    })
  })
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const line = data.indexOf('\r\n', at)
    if (line === -1) break
    const size = Number.parseInt(data.subarray(at, line).toString(), 16)
    if (!size) break
    out.push(data.subarray(line + 2, line + 2 + size))
    at = line + 2 + size + 2
  }
  return Buffer.concat(out)
}

/** Percent-encoding per the CloudEvents HTTP binding, written apart from the bridge's own. */
const percent = (text: string) =>
  [...Buffer.from(text, 'utf8')]
    .map((b) =>
      b > 0x20 && b < 0x7f && b !== 0x22 && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('')
/** What a string becomes once sent as UTF-8 (lone surrogates turn into U+FFFD). */
const utf8 = (text: string) => Buffer.from(text, 'utf8').toString('utf8')

// Strings a hostile client sends: any code point, and runs of the characters that broke the bridge.
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom(
      '\r',
      '\n',
      '\0',
      '\t',
      ' ',
      '%',
      '"',
      '\\',
      '\u0085',
      '\u007f',
      '\ud800',
      'Ł',
      'ó',
      '🚀',
      'a',
      'Z',
      '9',
      '\ufffe',
    ),
    maxLength: 10,
  }),
  fc.constantFrom('Łódź', 'a\r\nb', 'x', '', ' pad ', '%41', 'com.example.created'),
)
/** CloudEvents `time`: RFC 3339 timestamps (past, future, with offsets and fractions) and what is not one. */
const timeValue = fc.oneof(
  fc
    .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    '2025-06-30T23:59:59.5-07:00',
    '2026-12-01T10:00:00+01:00',
    '1999-12-31T23:59:59.123456789Z',
    '2026-12-01t10:00:00z',
    '2026-02-30T00:00:00Z',
    '2026-12-01T10:00',
    '2026-12-01',
    'yesterday',
    '',
  ),
  nasty,
)
/** Attributes of structured mode that are not extensions. */
const STRUCTURED = ['specversion', 'id', 'source', 'type', 'data', 'time', 'datacontenttype', 'data_base64']
/** A value sent raw in a header as the bridge reads it: UTF-8, trimmed (HTTP), `%XX` runs decoded (the binding). */
const asHeader = (text: string) =>
  utf8(text)
    .replace(/^[ \t]+|[ \t]+$/g, '')
    .replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run)
      } catch {
        return run
      }
    })
const attributeName = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,20}$/),
  fc.constantFrom('Tenant', 'a-b', 'x'.repeat(21), '', 'ce', 'partitionkey', 'data', 'id'),
)
const headerName = fc.oneof(
  fc.stringMatching(/^x-[a-z0-9]{1,8}$/),
  fc.stringMatching(/^ce-[a-z0-9]{1,8}$/),
  fc.constantFrom('X-Upper', 'content-type', 'ce-id', 'backplane-x', 'ce-Bad', 'a b'),
)
const deepJson = fc.integer({ min: 1, max: 300 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`)
const jsonText = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  deepJson,
  fc.string({ unit: 'binary', maxLength: 30 }),
)
const cuts = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 6 })

type Expected = {
  id: string
  /** Exact bytes on the webhook, or undefined when JSON is re-encoded (structured data). */
  bytes?: Buffer
  /** The data as JSON, compared after parsing. */
  json?: string
  key?: string
  attributes: Record<string, string>
  contentType?: string
}

export function hostileInputSuite(name: string, hooks: HostileHooks): void {
  const slow = hooks.slow ?? 1
  const numRuns = Number(process.env.FC_RUNS ?? hooks.numRuns)
  const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31)
  let bridge: RunningBridge
  let hook: Receiver
  let stream: SseClient
  let topic: string
  let ids = 0
  const expected: Expected[] = []
  const uncaught: unknown[] = []
  const onUncaught = (error: unknown) => void uncaught.push(error)

  describe(`hostile input (${name})`, () => {
    beforeAll(async () => {
      process.on('uncaughtException', onUncaught)
      process.on('unhandledRejection', onUncaught)
      hook = await receiver()
      topic = unique('fuzz').replace('.', '-')
      bridge = await startBridge(
        {
          brokers: { main: hooks.broker() },
          auth: { keys: [{ id: 'fuzz', key: KEY, publish: ['*'], subscribe: ['*'] }] },
          webhooks: { allow: ['127.0.0.1'], retry: { initialDelay: 20, maxDelay: 200, jitter: 'none' } },
          limits: { bodyBytes: 16_384, batchMessages: 8 },
          // Any other valid name is answered 404 instead of creating a topic on the broker.
          topics: [topic],
          store: false,
        },
        KEY,
      )
      bridge.server.on('clientError', answerClientError)
      const created = await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url } })
      expect(created.status).toBe(201)
      stream = await sse(`${bridge.base}/v1/topics/${topic}/events?access_token=${KEY}`)
      expect(stream.status).toBe(200)
      // Both consumers are in place before the properties run.
      const warm = await bridge.call(`/v1/topics/${topic}`, { json: { warm: true } })
      expect(warm.status).toBe(202)
      await until(
        () => hook.received.length > 0 && stream.events.length > 0,
        15_000 * slow,
        'the warm-up message on the webhook and the SSE stream',
      )
      hook.received.length = 0
      stream.events.length = 0
    })

    afterAll(async () => {
      process.off('uncaughtException', onUncaught)
      process.off('unhandledRejection', onUncaught)
      stream?.close()
      await bridge?.close()
      await hook?.stop()
    })

    function head(method: string, path: string, headers: [string, string][], body: Buffer): Buffer {
      const lines = [`${method} ${path} HTTP/1.1`, 'host: bridge', `authorization: Bearer ${KEY}`, 'connection: close']
      for (const [n, v] of headers) lines.push(`${n}: ${v}`)
      lines.push(`content-length: ${body.length}`)
      return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8')
    }

    const port = () => Number(new URL(bridge.base).port)

    /** The part of the invariant every answer obeys; returns the parsed body. */
    function checkAnswer(answer: Answer): { id?: string; results?: { index: number; status: number; id?: string }[] } {
      expect(answer.status, answer.headers).toBeGreaterThanOrEqual(200)
      expect(answer.status, `${answer.headers}\n${answer.body}`).toBeLessThan(500)
      expect(answer.headers.toLowerCase()).toContain('content-type: application/json')
      const body = JSON.parse(answer.body)
      // A batch says per entry what was wrong; every other refusal has one error.
      const errors = body.results
        ? body.results.filter((r: { status: number }) => r.status !== 202).map((r: { error: unknown }) => r.error)
        : answer.status >= 400
          ? [body.error]
          : []
      for (const error of errors) {
        expect(error.code).toMatch(/^[A-Z_]+$/)
        expect(error.message.length).toBeGreaterThan(10)
      }
      return body
    }

    const property = (arbitrary: fc.Arbitrary<unknown[]>, run: (...args: never[]) => Promise<void>, runs = numRuns) => {
      const started = Date.now()
      return fc
        .assert(
          fc.asyncProperty(arbitrary, async (args) => run(...(args as never[]))),
          {
            numRuns: runs,
            seed,
            endOnFailure: true,
          },
        )
        .finally(() => console.info(`[fast-check ${name}] seed=${seed} numRuns=${runs} ${Date.now() - started} ms`))
    }

    it('topic names: 2xx or 4xx with a JSON body', async () => {
      await property(fc.tuple(nasty, fc.boolean()), async (text: string, raw: boolean) => {
        const path = `/v1/topics/${raw ? text : percent(text)}`
        const body = Buffer.from('{}')
        const answer = await rawRequest(
          port(),
          head('POST', path, [['content-type', 'application/json']], body),
          body,
          [],
        )
        if (answer.status === 400 && answer.body === '') throw new Error('400 without a body')
        checkAnswer(answer)
      })
    })

    it('single publish: any key, media type and body, cut anywhere', async () => {
      await property(
        fc.tuple(
          fc.option(nasty),
          fc.constantFrom('application/json', 'text/plain', 'application/x+json', 'a\u0080b'),
          jsonText,
          cuts,
        ),
        async (key: string | null, type: string, text: string, chunking: number[]) => {
          const body = Buffer.from(text, 'utf8')
          const path = `/v1/topics/${topic}${key === null ? '' : `?key=${percent(key)}`}`
          const answer = await rawRequest(port(), head('POST', path, [['content-type', type]], body), body, chunking)
          const parsed = checkAnswer(answer)
          if (answer.status === 202) {
            const k = key === null || key === '' ? undefined : utf8(key)
            expected.push({
              id: parsed.id as string,
              bytes: body,
              ...(k === undefined ? {} : { key: k }),
              attributes: { type: topic },
              contentType: type,
            })
          }
        },
      )
    })

    /** What a structured-mode event that was accepted must arrive as. */
    function structuredExpectation(event: Record<string, unknown>, extensions: Record<string, unknown>, data: unknown) {
      const attributes: Record<string, string> = {
        id: utf8(event.id as string),
        source: utf8(event.source as string),
        type: utf8(event.type as string),
      }
      if (event.time !== undefined) attributes.time = event.time as string
      let key: string | undefined
      for (const [n, v] of Object.entries(extensions)) {
        if (n === 'partitionkey') key = utf8(String(v))
        else attributes[n] = utf8(String(v))
      }
      expected.push({ id: attributes.id as string, json: JSON.stringify(data), ...(key ? { key } : {}), attributes })
    }

    const extensionsOf = fc.dictionary(
      attributeName.filter((n) => !STRUCTURED.includes(n)),
      fc.oneof(nasty, fc.integer(), fc.boolean()),
      { maxKeys: 3 },
    )

    it('CloudEvents batch (structured): any attributes, extensions and data', async () => {
      const event = fc.record({
        source: nasty,
        type: nasty,
        extensions: extensionsOf,
        data: fc.jsonValue({ maxDepth: 4 }),
      })
      await property(
        fc.tuple(fc.array(event, { minLength: 1, maxLength: 10 }), cuts),
        async (
          events: { source: string; type: string; extensions: Record<string, unknown>; data: unknown }[],
          chunking: number[],
        ) => {
          const sent = events.map((e) => ({
            ...e.extensions,
            specversion: '1.0',
            id: `c${++ids}`,
            source: e.source,
            type: e.type,
            data: e.data,
          }))
          const body = Buffer.from(JSON.stringify(sent), 'utf8')
          const answer = await rawRequest(
            port(),
            head('POST', `/v1/topics/${topic}/batch`, [['content-type', 'application/cloudevents-batch+json']], body),
            body,
            chunking,
          )
          const parsed = checkAnswer(answer)
          for (const result of parsed.results ?? []) {
            if (result.status !== 202) continue
            const e = events[result.index] as (typeof events)[number]
            structuredExpectation(sent[result.index] as Record<string, unknown>, e.extensions, e.data)
          }
        },
      )
    })

    it('SSE: any query and Last-Event-ID', async () => {
      await property(
        fc.tuple(fc.option(nasty), fc.option(fc.oneof(nasty, fc.constantFrom('earliest', 'latest'))), fc.option(nasty)),
        async (group: string | null, from: string | null, last: string | null) => {
          const query = [`access_token=${KEY}`]
          if (group !== null) query.push(`group=${percent(group)}`)
          if (from !== null) query.push(`from=${percent(from)}`)
          const headers: [string, string][] = last === null ? [] : [['last-event-id', percent(last)]]
          const answer = await rawRequest(
            port(),
            head('GET', `/v1/topics/${topic}/events?${query.join('&')}`, headers, Buffer.alloc(0)),
            Buffer.alloc(0),
            [],
            true,
          )
          if (answer.status === 200) expect(answer.headers).toContain('text/event-stream')
          else checkAnswer(answer)
        },
        // Each stream that opens is a broker subscription (a group join on Kafka): fewer runs.
        Math.max(10, Math.ceil(numRuns / 20)),
      )
    })

    it('subscriptions and routes: any JSON body', async () => {
      const field = fc.oneof(
        nasty,
        fc.jsonValue({ maxDepth: 2 }),
        fc.constant(topic),
        fc.constant('http://127.0.0.1:1/x'),
      )
      const body = fc.oneof(
        fc.record(
          { topic: field, url: field, group: field, id: field, secret: field, maxAttempts: field, filter: field },
          { requiredKeys: [] },
        ),
        fc.record({ source: field, destinations: fc.array(field, { maxLength: 3 }), id: field }, { requiredKeys: [] }),
        fc.jsonValue({ maxDepth: 3 }),
      )
      await property(
        fc.tuple(fc.constantFrom('/v1/subscriptions', '/v1/routes'), body, cuts),
        async (path: string, json: unknown, chunking: number[]) => {
          const bytes = Buffer.from(JSON.stringify(json) ?? 'null', 'utf8')
          const answer = await rawRequest(
            port(),
            head('POST', path, [['content-type', 'application/json']], bytes),
            bytes,
            chunking,
          )
          const parsed = checkAnswer(answer) as { id?: string }
          // Whatever was created is removed again: it would take messages of the suite's topic.
          if (answer.status === 201)
            expect((await bridge.call(`${path}/${parsed.id}`, { method: 'DELETE' })).status).toBe(204)
        },
        Math.max(20, Math.ceil(numRuns / 3)),
      )
    })

    it('CloudEvents structured mode: any attributes and extensions', async () => {
      await property(
        fc.tuple(
          nasty,
          nasty,
          nasty,
          extensionsOf,
          fc.jsonValue({ maxDepth: 4 }),
          cuts,
          fc.option(timeValue, { nil: undefined }),
        ),
        async (
          id: string,
          source: string,
          type: string,
          extensions: Record<string, unknown>,
          data: unknown,
          chunking: number[],
          time: string | undefined,
        ) => {
          const eventId = `s${++ids}-${id}`
          const event = {
            ...extensions,
            specversion: '1.0',
            id: eventId,
            source,
            type,
            data,
            ...(time === undefined ? {} : { time }),
          }
          const body = Buffer.from(JSON.stringify(event), 'utf8')
          const answer = await rawRequest(
            port(),
            head('POST', `/v1/topics/${topic}`, [['content-type', 'application/cloudevents+json']], body),
            body,
            chunking,
          )
          checkAnswer(answer)
          if (answer.status === 202) structuredExpectation(event, extensions, data)
        },
      )
    })

    it('CloudEvents binary mode: any ce-* headers, percent-encoded or raw', async () => {
      await property(
        fc.tuple(
          nasty,
          nasty,
          fc.dictionary(attributeName, nasty, { maxKeys: 3 }),
          fc.boolean(),
          jsonText,
          cuts,
          fc.option(timeValue, { nil: undefined }),
        ),
        async (
          source: string,
          type: string,
          extensions: Record<string, string>,
          encode: boolean,
          text: string,
          chunking: number[],
          time: string | undefined,
        ) => {
          const eventId = `b${++ids}`
          const value = (v: string) => (encode ? percent(v) : v)
          const sent = (v: string) => (encode ? utf8(v) : asHeader(v))
          // Header names are case-insensitive: one attribute per lowercase name.
          const names = new Map<string, string>()
          for (const [n, v] of Object.entries(extensions)) {
            if (
              !['specversion', 'id', 'source', 'type', 'time'].includes(n.toLowerCase()) &&
              !names.has(n.toLowerCase())
            )
              names.set(n.toLowerCase(), v)
          }
          const headers: [string, string][] = [
            ['ce-specversion', '1.0'],
            ['ce-id', eventId],
            ['ce-source', value(source)],
            ['ce-type', value(type)],
            ['content-type', 'application/json'],
          ]
          for (const [n, v] of names) headers.push([`ce-${n}`, value(v)])
          if (time !== undefined) headers.push(['ce-time', value(time)])
          const body = Buffer.from(text, 'utf8')
          const answer = await rawRequest(port(), head('POST', `/v1/topics/${topic}`, headers, body), body, chunking)
          checkAnswer(answer)
          if (answer.status === 202) {
            const attributes: Record<string, string> = { id: eventId, source: sent(source), type: sent(type) }
            if (time !== undefined) attributes.time = sent(time)
            let key: string | undefined
            for (const [n, v] of names) {
              if (n === 'partitionkey') key = sent(v)
              else attributes[n] = sent(v)
            }
            expected.push({
              id: eventId,
              bytes: body,
              ...(key ? { key } : {}),
              attributes,
              contentType: 'application/json',
            })
          }
        },
      )
    })

    it('batch: any entries, keys, headers and data', async () => {
      const entry = fc.record(
        {
          data: fc.jsonValue({ maxDepth: 4 }),
          key: nasty,
          type: nasty,
          headers: fc.dictionary(headerName, nasty, { maxKeys: 3 }),
        },
        { requiredKeys: ['data'] },
      )
      await property(
        fc.tuple(fc.array(entry, { minLength: 1, maxLength: 10 }), cuts),
        async (entries: Record<string, unknown>[], chunking: number[]) => {
          const messages = entries.map((e) => ({ ...e, id: `m${++ids}` }))
          const body = Buffer.from(JSON.stringify({ messages }), 'utf8')
          const answer = await rawRequest(
            port(),
            head('POST', `/v1/topics/${topic}/batch`, [['content-type', 'application/json']], body),
            body,
            chunking,
          )
          const parsed = checkAnswer(answer)
          for (const result of parsed.results ?? []) {
            expect([202, 400]).toContain(result.status)
            if (result.status !== 202) continue
            const m = messages[result.index] as Record<string, unknown>
            const attributes: Record<string, string> = {
              id: m.id as string,
              type: m.type === undefined ? topic : utf8(m.type as string),
            }
            for (const [n, v] of Object.entries((m.headers ?? {}) as Record<string, string>)) {
              attributes[n.startsWith('ce-') ? n.slice(3) : `header:${n}`] = utf8(v)
            }
            expected.push({
              id: m.id as string,
              json: JSON.stringify(m.data),
              ...(m.key === undefined ? {} : { key: utf8(m.key as string) }),
              attributes,
            })
          }
        },
      )
    })

    it('malformed HTTP: 400 with a JSON body', async () => {
      await property(fc.tuple(nasty, nasty), async (name: string, value: string) => {
        const head = Buffer.from(
          `GET /healthz HTTP/1.1\r\nhost: x\r\n${name}: ${value}\r\nconnection: close\r\n\r\n`,
          'utf8',
        )
        checkAnswer(await rawRequest(port(), head, Buffer.alloc(0), []))
      })
    })

    it('every accepted message reaches the webhook and the SSE stream as it was accepted; the bridge is up', async () => {
      const started = Date.now()
      const hookById = () => new Map(hook.received.map((r) => [decodeURIComponent(r.headers['ce-id'] as string), r]))
      const sseById = () => new Map(stream.events.map((e) => [e.id as string, JSON.parse(e.data)]))
      await until(
        () => {
          const h = hookById()
          const s = sseById()
          return expected.every((e) => h.has(e.id) && s.has(e.id))
        },
        30_000 * slow,
        `${expected.length} accepted messages on the webhook and the SSE stream`,
      )
      const h = hookById()
      const s = sseById()
      for (const e of expected) {
        const call = h.get(e.id)
        const event = s.get(e.id)
        const header = (n: string) => {
          const v = call?.headers[n]
          return v === undefined ? undefined : decodeURIComponent(v as string)
        }
        if (e.bytes) expect(call?.body.equals(e.bytes), e.id).toBe(true)
        else expect(JSON.stringify(JSON.parse(call?.body.toString('utf8') ?? 'null')), e.id).toBe(e.json)
        if (e.bytes && e.contentType?.startsWith('text/')) expect(event.data, e.id).toBe(e.bytes.toString('utf8'))
        else
          expect(JSON.stringify(event.data), e.id).toBe(
            e.bytes ? JSON.stringify(JSON.parse(e.bytes.toString('utf8'))) : e.json,
          )
        expect(header('ce-partitionkey'), e.id).toBe(e.key)
        expect(event.partitionkey, e.id).toBe(e.key)
        for (const [n, v] of Object.entries(e.attributes)) {
          if (n.startsWith('header:')) {
            expect(call?.headers[n.slice(7)], `${e.id} ${n}`).toBe(v)
            continue
          }
          expect(header(`ce-${n}`), `${e.id} ce-${n}`).toBe(v)
          expect(event[n], `${e.id} ${n} on SSE`).toBe(v)
        }
        if (e.contentType) expect(call?.headers['content-type'], e.id).toBe(e.contentType)
      }
      expect(uncaught).toEqual([])
      expect((await bridge.call('/healthz')).status).toBe(200)
      console.info(`[fast-check ${name}] ${expected.length} accepted messages checked in ${Date.now() - started} ms`)
    })
  })
}
