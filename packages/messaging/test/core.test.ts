import { describe, expect, it } from 'vitest'
import { backoffDelay, defaultBackoff } from '../src/backoff.js'
import { decodeBody, encodeMessage, publishedAt } from '../src/envelope.js'
import { createBroker, DLQ, type Message, MessagingError, NonRetryableError, RetryAfterError } from '../src/index.js'
import { createKeyedLimiter } from '../src/limiter.js'
import { RunningDeliveries } from '../src/running.js'
import type { TransportDelivery } from '../src/transport.js'
import { randomUUID } from '../src/uuid.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('backoff', () => {
  it('grows exponentially up to maxMs without jitter', () => {
    const options = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 'none' as const }
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(options, a))).toEqual([100, 200, 400, 800, 1000, 1000])
  })
  it('draws full jitter in [0, computed]', () => {
    expect(backoffDelay(defaultBackoff, 3, () => 0)).toBe(0)
    expect(backoffDelay(defaultBackoff, 3, () => 0.5)).toBe(200)
    expect(backoffDelay(defaultBackoff, 3, () => 0.999)).toBeLessThanOrEqual(400)
  })
})

describe('message ids', () => {
  it('are random version 4 UUIDs, unique across many refills of the entropy buffer', () => {
    const ids = Array.from({ length: 5000 }, () => randomUUID())
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})

describe('running deliveries', () => {
  const delivery = (name: string) => ({ topic: name }) as unknown as TransportDelivery
  const waitFor = async (condition: () => boolean, what: string) => {
    const end = Date.now() + 5_000
    while (!condition()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await sleep(5)
    }
  }

  it('reports what has been running for an interval, not what ended, and stops ticking when idle', async () => {
    const long: string[] = []
    const running = new RunningDeliveries(20, (d) => long.push(d.topic))
    const ticker = () => (running as unknown as { ticker: unknown }).ticker
    const slow = running.add(delivery('slow'), performance.now())
    running.remove(running.add(delivery('quick'), performance.now()))
    const recent = running.add(delivery('recent'), performance.now() + 60_000)
    await waitFor(() => long.includes('slow'), 'the slow delivery')
    expect(long).not.toContain('quick')
    expect(long).not.toContain('recent')
    running.remove(slow)
    running.remove(recent)
    running.remove(recent) // removing twice is harmless
    await waitFor(() => ticker() === undefined, 'the ticker to stop')
    long.length = 0
    await sleep(50)
    expect(long).toEqual([])
  })
})

describe('keyed limiter', () => {
  it('runs at most `concurrency` tasks at once', async () => {
    const limiter = createKeyedLimiter(2, false)
    let running = 0
    let max = 0
    const task = async () => {
      running++
      max = Math.max(max, running)
      await sleep(5)
      running--
    }
    await Promise.all(Array.from({ length: 10 }, () => limiter.run(undefined, task)))
    expect(max).toBe(2)
    expect(limiter.active).toBe(0)
    expect(limiter.waiting).toBe(0)
  })

  it('keeps one key in order and lets other keys pass a busy one', async () => {
    const limiter = createKeyedLimiter(4, true)
    const log: string[] = []
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`)
      await sleep(ms)
      log.push(`end ${name}`)
    }
    await Promise.all([
      limiter.run('a', task('a1', 30)),
      limiter.run('a', task('a2', 1)),
      limiter.run('b', task('b1', 1)),
      limiter.run(undefined, task('x', 1)),
    ])
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'))
    expect(log.indexOf('end b1')).toBeLessThan(log.indexOf('end a1'))
    expect(log.indexOf('end x')).toBeLessThan(log.indexOf('end a1'))
  })

  it('passes results and errors through', async () => {
    const limiter = createKeyedLimiter(1, true)
    await expect(limiter.run('k', async () => 42)).resolves.toBe(42)
    await expect(limiter.run('k', async () => Promise.reject(new Error('no')))).rejects.toThrow('no')
    await expect(limiter.run('k', async () => 'after')).resolves.toBe('after')
  })
})

describe('envelope', () => {
  it('sets CloudEvents attributes over user headers and lowercases header names', () => {
    const m = encodeMessage('orders.created', { id: 1 }, '//svc', {
      headers: { Tenant: 't1', 'ce-id': 'spoofed' },
      id: 'e-1',
      key: 'k',
    })
    expect(m.headers).toMatchObject({
      tenant: 't1',
      'ce-id': 'e-1',
      'ce-source': '//svc',
      'ce-type': 'orders.created',
      'ce-specversion': '1.0',
      'content-type': 'application/json',
    })
    expect(new Date(m.headers['ce-time'] as string).getTime()).toBeGreaterThan(Date.now() - 5000)
    expect(decodeBody(m)).toEqual({ id: 1 })
  })

  it('keeps bytes as bytes and text as text', () => {
    const bytes = encodeMessage('t', new Uint8Array([1, 2]), 's')
    expect(bytes.headers['content-type']).toBe('application/octet-stream')
    expect(decodeBody(bytes)).toEqual(new Uint8Array([1, 2]))
    const text = encodeMessage('t', 'hello', 's', { contentType: 'text/plain' })
    expect(decodeBody(text)).toBe('hello')
  })
})

describe('createBroker', () => {
  it.each([
    ['not a url', 'MESSAGING_INVALID_URL', /invalid broker URL "not a url": expected memory:\/\//],
    ['redis://localhost:6379', 'MESSAGING_INVALID_URL', /unknown broker "redis".*expected memory, kafka or nats/],
  ])('rejects %s', async (url, code, message) => {
    const error = await createBroker(url).catch((e: unknown) => e)
    expect(MessagingError.is(error)).toBe(true)
    expect(error).toMatchObject({ code, message: expect.stringMatching(message) })
  })

  it('rejects unknown and malformed broker, publish and subscribe options with what was expected', async () => {
    await expect(createBroker('memory://opts', { colour: 'red' } as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('unknown option(s) "colour"'),
    })
    const broker = await createBroker('memory://opts')
    await expect(broker.publish('t', 1, { key: 42 } as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('key: '),
    })
    // Batch entries: the common shapes are checked without the schema, anything else still with it.
    await expect(broker.publishBatch('t', [{ data: 1, headers: { a: 1 } } as never])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('headers.a: '),
    })
    await expect(broker.publishBatch('t', [{ data: 1, colour: 'red' } as never])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('unknown option(s) "colour"'),
    })
    await expect(broker.publishBatch('t', [{ data: 1, id: '' }])).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('id: '),
    })
    await expect(broker.subscribe('t', () => {}, { maxAttempts: 0 })).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      message: expect.stringContaining('maxAttempts'),
    })
    await expect(broker.subscribe('t', 'not a function' as never)).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
    })
    await broker.close()
  })
})

describe('RetryAfterError', () => {
  it('waits the given delay instead of the backoff, and still counts attempts', async () => {
    const broker = await createBroker('memory://retry-after')
    const times: number[] = []
    const sub = await broker.subscribe(
      't',
      (m) => {
        times.push(Date.now())
        if (m.attempt === 1) throw new RetryAfterError('busy', 150)
      },
      { maxAttempts: 3, backoff: { initialMs: 1, maxMs: 1, multiplier: 1, jitter: 'none' } },
    )
    await broker.publish('t', 1)
    const deadline = Date.now() + 3000
    while (times.length < 2 && Date.now() < deadline) await sleep(10)
    expect(times).toHaveLength(2)
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(140)
    await sub.close()
    await broker.close()
  })
})

describe('broker URLs', () => {
  it('accepts a list of hosts with ports, which WHATWG URL alone refuses', async () => {
    const { parseBrokerUrl } = await import('../src/create-broker.js')
    const url = parseBrokerUrl('kafka://user:pw@h1:9092,h2:9093?clientId=orders')
    expect(decodeURIComponent(url.hostname)).toBe('h1:9092,h2:9093')
    expect(url.username).toBe('user')
    expect(url.searchParams.get('clientId')).toBe('orders')
    expect(decodeURIComponent(parseBrokerUrl('nats://a:4222,b:4222?jetstream=true').host)).toBe('a:4222,b:4222')
    expect(parseBrokerUrl('nats://127.0.0.1:4222').host).toBe('127.0.0.1:4222')
  })
})

describe('publish time', () => {
  it('keeps a given CloudEvents time and refuses one that is not RFC 3339', async () => {
    const broker = await createBroker('memory://time')
    const got: string[] = []
    const sub = await broker.subscribe('t', (m) => void got.push(m.headers['ce-time'] ?? ''), { from: 'earliest' })
    await broker.publish('t', 1, { time: '2026-01-02T03:04:05.678Z' })
    await expect(broker.publish('t', 2, { time: 'yesterday' })).rejects.toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
    })
    const deadline = Date.now() + 2000
    while (got.length < 1 && Date.now() < deadline) await sleep(10)
    expect(got).toEqual(['2026-01-02T03:04:05.678Z'])
    await sub.close()
    await broker.close()
  })

  it('publishedAt is the publish time when time is given (backplane-published), else ce-time', async () => {
    const broker = await createBroker(`memory://published-${randomUUID()}`)
    const got: Message<unknown>[] = []
    const sub = await broker.subscribe('t', (m) => void got.push(m), { from: 'earliest' })
    const before = Date.now()
    await broker.publish('t', 1, { time: '2020-01-02T03:04:05Z', id: 'with' })
    await broker.publish('t', 2, { time: '2020-01-02T03:04:05Z', id: 'with-headers', headers: { a: 'b' } })
    await broker.publish('t', 3, { id: 'without' })
    const deadline = Date.now() + 2000
    while (got.length < 3 && Date.now() < deadline) await sleep(10)
    await sub.close()
    await broker.close()
    const after = Date.now()
    for (const id of ['with', 'with-headers']) {
      const m = got.find((g) => g.id === id) as Message<unknown>
      expect(m.headers['ce-time']).toBe('2020-01-02T03:04:05Z')
      expect(m.publishedAt.getTime()).toBeGreaterThanOrEqual(before)
      expect(m.publishedAt.getTime()).toBeLessThanOrEqual(after)
      expect(m.publishedAt.toISOString()).toBe(m.headers['backplane-published'])
    }
    const without = got.find((g) => g.id === 'without') as Message<unknown>
    expect(without.headers['backplane-published']).toBeUndefined()
    expect(without.publishedAt.toISOString()).toBe(without.headers['ce-time'])
    expect(without.publishedAt.getTime()).toBeGreaterThanOrEqual(before)
  })

  it('a republish never carries the publish time of the message it copies', () => {
    const stale = '2020-01-01T00:00:00.000Z'
    const copied = encodeMessage('t', 1, 's', { headers: { 'backplane-published': stale, 'ce-time': stale } })
    expect(copied.headers['backplane-published']).toBeUndefined()
    expect(publishedAt(copied).getTime()).toBeGreaterThan(Date.now() - 5000)
    const timed = encodeMessage('t', 1, 's', { time: stale, headers: { 'Backplane-Published': stale } })
    expect(timed.headers['ce-time']).toBe(stale)
    expect(publishedAt(timed).getTime()).toBeGreaterThan(Date.now() - 5000)
    // Without a publish time (another publisher): ce-time.
    expect(publishedAt({ ...copied, headers: { 'ce-time': stale } }).toISOString()).toBe(stale)
  })

  it('a dead letter keeps the event time in ce-time; its publishedAt is when it was dead-lettered', async () => {
    const broker = await createBroker(`memory://dlq-time-${randomUUID()}`)
    const letters: Message<unknown>[] = []
    const dlq = await broker.subscribe('t.dlq', (m) => void letters.push(m), { from: 'earliest' })
    const sub = await broker.subscribe(
      't',
      () => {
        throw new NonRetryableError('no')
      },
      { from: 'earliest' },
    )
    const before = Date.now()
    await broker.publish('t', 1, { time: '2020-01-02T03:04:05Z' })
    const deadline = Date.now() + 2000
    while (letters.length < 1 && Date.now() < deadline) await sleep(10)
    await Promise.all([sub.close(), dlq.close()])
    await broker.close()
    const letter = letters[0] as Message<unknown>
    expect(letter.headers['ce-time']).toBe('2020-01-02T03:04:05Z')
    expect(letter.headers['backplane-published']).toBe(letter.headers[DLQ.at])
    expect(letter.publishedAt.getTime()).toBeGreaterThanOrEqual(before)
  })
})
