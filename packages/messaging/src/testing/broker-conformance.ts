/**
 * The broker contract, as tests every adapter must pass unchanged: call `brokerConformance` from
 * an adapter's test file with hooks that connect to its broker (and, for a real server, restart
 * it). Timing-sensitive steps scale with `hooks.slow` (Kafka's group joins take seconds).
 *
 * It declares vitest tests (describe, it), so it runs inside vitest only. It drives the broker
 * through `@backplane/messaging` itself, imported by name, so that the brokers a test creates and
 * the classes it checks for (NonRetryableError, DLQ) come from the same copy of the package.
 */
import { randomUUID } from 'node:crypto'
import { sleep } from '@backplane/internal'
import { type Broker, DLQ, defineTopic, type Message, NonRetryableError } from '@backplane/messaging'
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { redriveConformance } from './redrive-conformance.js'
import { until } from './until.js'

export interface ConformanceHooks {
  /** A new broker on the server under test (each test closes what it opens). */
  connect(): Promise<Broker>
  /** Kill the server (as with kill -9) and start it again, for the reconnect test. */
  restart?: () => Promise<void>
  /** Multiplies waits: 1 for fast brokers. */
  slow?: number
  /**
   * Attempts after a failure, for a test server with known faults of its own (the librdkafka
   * mock's consumer-group code, see the Kafka test file); each attempt uses groups of its own.
   */
  retry?: number
}

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'

export function brokerConformance(name: string, hooks: ConformanceHooks): void {
  const slow = hooks.slow ?? 1
  const wait = (ms: number) => ms * slow
  const topic = (what: string) => `conf.${what}.${randomUUID().slice(0, 8)}`
  const open: Broker[] = []
  const connect = async () => {
    const broker = await hooks.connect()
    open.push(broker)
    return broker
  }
  const fast = (maxAttempts: number) => ({
    maxAttempts,
    initialDelay: 5,
    maxDelay: 20,
    factor: 2,
    jitter: 'none' as const,
  })
  // Group names unique to each test: brokers such as Kafka keep a group busy for a while after
  // its members leave, and tests must not wait on each other's groups.
  const runId = randomUUID().slice(0, 6)
  // A retried test must not join the groups of its failed attempt, whose members may still run.
  let attempt = 0
  const grp = (name: string) => {
    const test = (expect.getState().currentTestName ?? 'none').replace(/[^A-Za-z0-9]+/g, '-').slice(-40)
    return `${name}-${test}-${runId}-${attempt}`
  }

  describe(`broker contract: ${name}`, { retry: hooks.retry ?? 0 }, () => {
    beforeEach(() => {
      attempt++
    })
    let broker: Broker
    beforeAll(async () => {
      // Trace propagation needs a context manager and a propagator, as an app with an SDK has.
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
      propagation.setGlobalPropagator(new W3CTraceContextPropagator())
      broker = await connect()
    })
    afterAll(async () => {
      await Promise.all(open.map((b) => b.close()))
    })

    it('delivers what was published: envelope, key, headers, CloudEvents attributes', async () => {
      const t = topic('envelope')
      const got: Message<{ n: number }>[] = []
      const sub = await broker.subscribe<{ n: number }>(t, (m) => void got.push(m), { group: grp('g') })
      const before = Date.now()
      const { id } = await broker.publish(t, { n: 1 }, { key: 'k1', headers: { Tenant: 't1' } })
      await until(() => got.length === 1, wait(10_000), 'the message')
      const m = got[0] as Message<{ n: number }>
      expect(m).toMatchObject({ id, topic: t, key: 'k1', data: { n: 1 }, attempt: 1 })
      expect(m.headers).toMatchObject({
        tenant: 't1',
        'ce-id': id,
        'ce-type': t,
        'ce-specversion': '1.0',
        'content-type': 'application/json',
      })
      expect(m.headers['ce-source']).toBeTruthy()
      expect(m.publishedAt.getTime()).toBeGreaterThanOrEqual(before - 1000)
      expect(JSON.parse(Buffer.from(m.raw).toString())).toEqual({ n: 1 })
      await sub.close()
    })

    it('hands over raw bytes untouched', async () => {
      const t = topic('bytes')
      const got: Message<Uint8Array>[] = []
      const sub = await broker.subscribe<Uint8Array>(t, (m) => void got.push(m), { group: grp('g') })
      await broker.publish(t, new Uint8Array([0, 1, 2, 255]))
      await until(() => got.length === 1, wait(10_000), 'the message')
      expect(Buffer.from(got[0]?.data as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]))
      expect(got[0]?.headers['content-type']).toBe('application/octet-stream')
      await sub.close()
    })

    it('shares a group among its members and gives every group all messages', async () => {
      const t = topic('groups')
      const a: string[] = []
      const b: string[] = []
      const other: string[] = []
      const subs = await Promise.all([
        broker.subscribe<{ i: number }>(t, (m) => void a.push(m.id), { group: grp('billing') }),
        broker.subscribe<{ i: number }>(t, (m) => void b.push(m.id), { group: grp('billing') }),
        broker.subscribe<{ i: number }>(t, (m) => void other.push(m.id), { group: grp('audit') }),
      ])
      await sleep(wait(200))
      const results = await broker.publishBatch(
        t,
        Array.from({ length: 40 }, (_, i) => ({ data: { i }, key: `k${i}` })),
      )
      const ids = results.map((r) => r.id).sort()
      await until(() => a.length + b.length >= 40 && other.length >= 40, wait(15_000), '40 messages in each group')
      await sleep(wait(100))
      expect([...a, ...b].sort()).toEqual(ids)
      expect(a.length).toBeGreaterThan(0)
      expect(b.length).toBeGreaterThan(0)
      expect([...other].sort()).toEqual(ids)
      await Promise.all(subs.map((s) => s.close()))
    })

    it('keeps per-key order with ordered: true while other keys run in parallel', async () => {
      const t = topic('ordered')
      const seen = new Map<string, number[]>()
      let running = 0
      let maxRunning = 0
      const sub = await broker.subscribe<{ key: string; n: number }>(
        t,
        async (m) => {
          running++
          maxRunning = Math.max(maxRunning, running)
          await sleep(Math.random() * 5)
          seen.set(m.data.key, [...(seen.get(m.data.key) ?? []), m.data.n])
          running--
        },
        { group: grp('g'), ordered: true, concurrency: 4 },
      )
      const batch = []
      for (let n = 0; n < 20; n++) for (const key of ['a', 'b', 'c']) batch.push({ data: { key, n }, key })
      await broker.publishBatch(t, batch)
      await until(() => [...seen.values()].reduce((s, v) => s + v.length, 0) === 60, wait(15_000), '60 messages')
      for (const key of ['a', 'b', 'c']) expect(seen.get(key)).toEqual([...Array(20).keys()])
      expect(maxRunning).toBeGreaterThan(1)
      expect(maxRunning).toBeLessThanOrEqual(4)
      await sub.close()
    })

    it('never runs more handlers at once than concurrency', async () => {
      const t = topic('concurrency')
      let running = 0
      let maxRunning = 0
      let done = 0
      const sub = await broker.subscribe(
        t,
        async () => {
          running++
          maxRunning = Math.max(maxRunning, running)
          await sleep(10)
          running--
          done++
        },
        { group: grp('g'), concurrency: 3 },
      )
      await broker.publishBatch(
        t,
        Array.from({ length: 30 }, (_, i) => ({ data: i })),
      )
      await until(() => done === 30, wait(15_000), '30 messages')
      expect(maxRunning).toBeLessThanOrEqual(3)
      await sub.close()
    })

    it('starts a new group at the earliest message or at the latest, as asked', async () => {
      const t = topic('from')
      await broker.publish(t, 'before')
      const early: unknown[] = []
      const late: unknown[] = []
      const subs = [
        await broker.subscribe(t, (m) => void early.push(m.data), { group: grp('early'), from: 'earliest' }),
        await broker.subscribe(t, (m) => void late.push(m.data), { group: grp('late'), from: 'latest' }),
      ]
      await broker.publish(t, 'after')
      await until(() => early.length === 2 && late.length === 1, wait(15_000), 'both groups')
      expect(early).toEqual(['before', 'after'])
      expect(late).toEqual(['after'])
      await Promise.all(subs.map((s) => s.close()))
    })

    it('keeps a group per topic: one name on two topics is two groups, each with its own start and members', async () => {
      const [orders, refunds] = [topic('per-topic-a'), topic('per-topic-b')]
      const group = grp('billing')
      const gotOrders: unknown[] = []
      const gotRefunds: unknown[] = []
      const first = await broker.subscribe(orders, (m) => void gotOrders.push(m.data), { group, from: 'latest' })
      await broker.publish(orders, 'order-1')
      await until(() => gotOrders.length === 1, wait(15_000), 'the first order')
      // Published before the group reads `refunds`: a new group starting at the latest never sees it,
      // though a group of that name already reads `orders`.
      await broker.publish(refunds, 'refund-before')
      const second = await broker.subscribe(refunds, (m) => void gotRefunds.push(m.data), { group, from: 'latest' })
      await broker.publish(refunds, 'refund-after')
      await broker.publish(orders, 'order-2')
      await until(() => gotOrders.length === 2 && gotRefunds.length === 1, wait(15_000), 'one message on each topic')
      await sleep(wait(200))
      expect(gotOrders).toEqual(['order-1', 'order-2'])
      expect(gotRefunds).toEqual(['refund-after'])
      await Promise.all([first.close(), second.close()])
    })

    it('retries with backoff and counts attempts', async () => {
      const t = topic('retry')
      const attempts: number[] = []
      const dead: unknown[] = []
      broker.events.on('deadLetter', (e) => e.topic === t && dead.push(e))
      const sub = await broker.subscribe(
        t,
        (m) => {
          attempts.push(m.attempt)
          if (m.attempt < 3) throw new Error('flaky')
        },
        { group: grp('g'), retry: fast(5) },
      )
      await broker.publish(t, { x: 1 })
      await until(() => attempts.length === 3, wait(10_000), 'three attempts')
      await sleep(wait(100))
      expect(attempts).toEqual([1, 2, 3])
      expect(dead).toEqual([])
      await sub.close()
    })

    it('dead-letters after maxAttempts with the reason in headers; a poison message does not block the rest', async () => {
      const t = topic('dlq')
      const dlq = `${t}.dead`
      const handled: number[] = []
      const letters: Message<{ n: number }>[] = []
      const dlqSub = await broker.subscribe<{ n: number }>(dlq, (m) => void letters.push(m), {
        group: grp('ops'),
        from: 'earliest',
      })
      const sub = await broker.subscribe<{ n: number }>(
        t,
        (m) => {
          if (m.data.n === 0) throw new Error('card processor down')
          handled.push(m.data.n)
        },
        { group: grp('billing'), retry: fast(3), deadLetter: dlq },
      )
      // One key: the poison message is first in line for the same partition.
      await broker.publishBatch(
        t,
        Array.from({ length: 6 }, (_, n) => ({ data: { n }, key: 'same' })),
      )
      await until(() => handled.length === 5 && letters.length === 1, wait(15_000), 'the rest and the dead letter')
      expect(handled).toEqual([1, 2, 3, 4, 5])
      const letter = letters[0] as Message<{ n: number }>
      expect(letter.data).toEqual({ n: 0 })
      expect(letter.headers).toMatchObject({
        [DLQ.reason]: 'max-attempts',
        [DLQ.attempts]: '3',
        [DLQ.topic]: t,
        [DLQ.group]: grp('billing'),
      })
      expect(letter.headers[DLQ.error]).toContain('card processor down')
      await Promise.all([sub.close(), dlqSub.close()])
    })

    it('dead-letters a NonRetryableError at once', async () => {
      const t = topic('nonretry')
      const attempts: number[] = []
      const letters: Message[] = []
      const dlqSub = await broker.subscribe(`${t}.dlq`, (m) => void letters.push(m), {
        group: grp('ops'),
        from: 'earliest',
      })
      const sub = await broker.subscribe(
        t,
        (m) => {
          attempts.push(m.attempt)
          throw new NonRetryableError('order total is negative')
        },
        { group: grp('g'), retry: fast(5) },
      )
      await broker.publish(t, { total: -1 })
      await until(() => letters.length === 1, wait(10_000), 'the dead letter')
      expect(attempts).toEqual([1])
      expect(letters[0]?.headers[DLQ.reason]).toBe('non-retryable')
      expect(letters[0]?.headers[DLQ.attempts]).toBe('1')
      await Promise.all([sub.close(), dlqSub.close()])
    })

    it('rejects data that fails a typed topic at publish, and dead-letters it at the consumer', async () => {
      const name = topic('typed')
      const Order = defineTopic(name, z.object({ id: z.string(), total: z.number().nonnegative() }))
      await expect(broker.publish(Order, { id: 'o-1', total: -5 } as never)).rejects.toMatchObject({
        code: 'MESSAGING_INVALID_MESSAGE',
        message: expect.stringMatching(/total: .*>=0|total: Too small/),
      })
      const handled: unknown[] = []
      const letters: Message[] = []
      const dlqSub = await broker.subscribe(`${name}.dlq`, (m) => void letters.push(m), {
        group: grp('ops'),
        from: 'earliest',
      })
      const sub = await broker.subscribe(Order, (m) => void handled.push(m.data), {
        group: grp('g'),
        retry: { maxAttempts: 5 },
      })
      // An untyped publisher (another service) sends bad data to the same topic.
      await broker.publish(name, { id: 42 })
      await broker.publish(Order, { id: 'o-2', total: 10 })
      await until(() => letters.length === 1 && handled.length === 1, wait(10_000), 'the good one and the dead letter')
      expect(handled).toEqual([{ id: 'o-2', total: 10 }])
      expect(letters[0]?.headers[DLQ.reason]).toBe('schema')
      expect(letters[0]?.headers[DLQ.attempts]).toBe('1')
      expect(letters[0]?.headers[DLQ.error]).toContain('id')
      await Promise.all([sub.close(), dlqSub.close()])
    })

    it('de-duplicates by message id when asked', async () => {
      const t = topic('dedupe')
      const handled: string[] = []
      const duplicates: string[] = []
      broker.events.on('duplicate', (e) => e.topic === t && duplicates.push(e.id))
      const sub = await broker.subscribe(t, (m) => void handled.push(m.id), {
        group: grp('g'),
        dedupe: { ttl: 60_000 },
      })
      await broker.publish(t, { a: 1 }, { id: 'evt-1' })
      await broker.publish(t, { a: 1 }, { id: 'evt-1' })
      await broker.publish(t, { a: 2 }, { id: 'evt-2' })
      await until(() => handled.length === 2 && duplicates.length === 1, wait(10_000), 'two handled, one duplicate')
      // Keyless messages have no order to keep (Kafka spreads them over partitions).
      expect([...handled].sort()).toEqual(['evt-1', 'evt-2'])
      expect(duplicates).toEqual(['evt-1'])
      await sub.close()
    })

    it('continues the publisher trace in the handler, through traceparent', async () => {
      const t = topic('trace')
      const seen: { traceId: string | undefined; header: string | undefined }[] = []
      const sub = await broker.subscribe(
        t,
        (m) => {
          seen.push({ traceId: trace.getSpanContext(context.active())?.traceId, header: m.headers.traceparent })
        },
        { group: grp('g') },
      )
      const span = trace.wrapSpanContext({ traceId, spanId: '00f067aa0ba902b7', traceFlags: 1 })
      await context.with(trace.setSpan(ROOT_CONTEXT, span), () => broker.publish(t, { traced: true }))
      await until(() => seen.length === 1, wait(10_000), 'the message')
      expect(seen[0]?.traceId).toBe(traceId)
      expect(seen[0]?.header).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
      await sub.close()
    })

    it('closes gracefully: handlers in progress finish, nothing is redelivered or lost', async () => {
      const t = topic('shutdown')
      const handled: number[] = []
      const handler = async (m: Message<number>) => {
        await sleep(20)
        handled.push(m.data)
      }
      const first = await broker.subscribe<number>(t, handler, { group: grp('g'), concurrency: 2 })
      await broker.publishBatch(
        t,
        Array.from({ length: 30 }, (_, i) => ({ data: i, key: `k${i % 3}` })),
      )
      await until(() => handled.length >= 5, wait(10_000), 'five handled')
      await first.close()
      const atClose = handled.length
      await sleep(wait(100))
      expect(handled.length).toBe(atClose) // nothing runs after close resolved
      const second = await broker.subscribe<number>(t, handler, { group: grp('g'), concurrency: 2 })
      await until(() => handled.length >= 30, wait(20_000), 'all 30')
      await sleep(wait(300))
      expect([...handled].sort((x, y) => x - y)).toEqual([...Array(30).keys()])
      await second.close()
    })

    it('reports health and refuses work once closed', async () => {
      const own = await connect()
      expect(own.health()).toMatchObject({ state: 'connected' })
      await own.close()
      expect(own.health().state).toBe('closed')
      await expect(own.publish(topic('closed'), 1)).rejects.toMatchObject({ code: 'MESSAGING_CLOSED' })
    })

    it.runIf(hooks.restart !== undefined)(
      'resumes by itself after the server restarts: nothing accepted is lost',
      async () => {
        const t = topic('restart')
        const own = await connect()
        const states: string[] = []
        own.events.on('disconnected', () => states.push('disconnected'))
        own.events.on('connected', () => states.push('connected'))
        const received = new Set<number>()
        const sub = await own.subscribe<number>(t, (m) => void received.add(m.data), {
          group: grp('g'),
          from: 'earliest',
        })
        const accepted: number[] = []
        let stop = false
        const publishing = (async () => {
          for (let i = 0; !stop && i < 10_000; i++) {
            try {
              await own.publish(t, i, { key: `k${i % 4}` })
              accepted.push(i)
            } catch {
              // not accepted while the server is down: the publisher may retry; we only count accepted ones
            }
            await sleep(5)
          }
        })()
        await until(() => received.size >= 20, wait(15_000), 'the first messages')
        await hooks.restart?.()
        await until(
          () => accepted.length >= received.size + 20 || accepted.length > 200,
          wait(30_000),
          'publishing to resume',
        )
        stop = true
        await publishing
        await until(() => accepted.every((i) => received.has(i)), wait(30_000), 'every accepted message')
        expect(accepted.filter((i) => !received.has(i))).toEqual([])
        expect(states).toContain('disconnected')
        expect(own.health().state).toBe('connected')
        await sub.close()
      },
    )
  })
  redriveConformance(name, hooks)
}
