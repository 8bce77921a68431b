import { randomUUID } from 'node:crypto'
import { until } from '@backplane/messaging/testing'
import { EventEmitter } from 'eventemitter3'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createMemoryTransport } from '../src/adapters/memory.js'
import { readDeadLetter, replayMessage } from '../src/dead-letters-entry.js'
import { matchesFilter, parseDeadLetterFilter } from '../src/dead-letters-filter.js'
import { encodeMessage } from '../src/envelope.js'
import {
  type Broker,
  createBroker,
  createBrokerOver,
  DLQ,
  type Message,
  MessagingError,
  NonRetryableError,
  REPLAY,
  type ScannedMessage,
  type Transport,
} from '../src/index.js'
import { sleep } from './sleep.js'

const bus = () => `memory://dead-letters-${randomUUID().slice(0, 8)}`

/** A broker with a `billing` group that dead-letters every message of `topic` until healed. */
async function failing(topic: string, url = bus()) {
  const broker = await createBroker(url)
  const state = { healed: false, dead: 0, got: [] as Message<unknown>[] }
  broker.events.on('deadLetter', () => state.dead++)
  await broker.subscribe(
    topic,
    (m) => {
      state.got.push(m)
      if (!state.healed) throw new NonRetryableError('not today')
    },
    { group: 'billing' },
  )
  return { broker, state }
}

function invalid(fn: () => unknown): MessagingError {
  try {
    fn()
  } catch (error) {
    if (MessagingError.is(error)) return error
    throw error
  }
  throw new Error('expected a MessagingError')
}

describe('dead-letter filters', () => {
  it('refuses a bad filter with MESSAGING_INVALID_OPTIONS naming the field and what was expected', () => {
    expect(invalid(() => parseDeadLetterFilter({ since: 'yesterday' }))).toMatchObject({
      code: 'MESSAGING_INVALID_OPTIONS',
      details: [expect.stringMatching(/^since: /)],
    })
    expect(invalid(() => parseDeadLetterFilter({ status: 'lost' })).details[0]).toMatch(/^status: .*pending.*replayed/)
    expect(invalid(() => parseDeadLetterFilter({ limit: 0 })).details[0]).toMatch(/^limit: /)
    expect(invalid(() => parseDeadLetterFilter({ reasons: ['schema'] })).details[0]).toContain('"reasons"')
    expect(
      invalid(() => parseDeadLetterFilter({ since: '2026-12-02T00:00:00Z', until: '2026-12-01T00:00:00Z' })).details,
    ).toEqual(['since: since must be before until'])
    expect(parseDeadLetterFilter(undefined)).toEqual({})
  })

  const instant = fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
  const filterArb = fc.record(
    {
      reason: fc.constantFrom('max-attempts', 'schema', 'non-retryable'),
      since: instant,
      until: instant,
      id: fc.constantFrom('a', 'b', 'c'),
      status: fc.constantFrom('pending' as const, 'replayed' as const),
      limit: fc.integer({ min: 1, max: 10 }),
    },
    { requiredKeys: [] },
  )
  const entryArb = fc.record({
    id: fc.constantFrom('a', 'b', 'c'),
    reason: fc.constantFrom('max-attempts', 'schema', 'non-retryable'),
    at: instant,
    status: fc.constantFrom('pending' as const, 'replayed' as const),
  })

  it('property: a filter given as Dates or as RFC 3339 text parses to the same filter, and selects as each condition says', () => {
    fc.assert(
      fc.property(filterArb, fc.array(entryArb, { maxLength: 20 }), (raw, entries) => {
        const ordered = raw.since === undefined || raw.until === undefined || raw.since < raw.until
        if (!ordered) {
          expect(invalid(() => parseDeadLetterFilter(raw)).code).toBe('MESSAGING_INVALID_OPTIONS')
          return
        }
        const asText = {
          ...raw,
          ...(raw.since ? { since: raw.since.toISOString() } : {}),
          ...(raw.until ? { until: raw.until.toISOString() } : {}),
        }
        const filter = parseDeadLetterFilter(raw)
        expect(parseDeadLetterFilter(asText)).toEqual(filter)
        for (const entry of entries) {
          const expected =
            (raw.reason === undefined || entry.reason === raw.reason) &&
            (raw.id === undefined || entry.id === raw.id) &&
            (raw.status === undefined || entry.status === raw.status) &&
            (raw.since === undefined || entry.at >= raw.since) &&
            (raw.until === undefined || entry.at < raw.until)
          expect(matchesFilter(entry, filter)).toBe(expected)
        }
      }),
    )
  })

  it('property: any input either parses or throws MESSAGING_INVALID_OPTIONS, nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.dictionary(fc.constantFrom('reason', 'since', 'until', 'id', 'status', 'limit', 'other'), fc.anything()),
        ),
        (input) => {
          try {
            parseDeadLetterFilter(input)
          } catch (error) {
            expect(MessagingError.is(error) && error.code).toBe('MESSAGING_INVALID_OPTIONS')
          }
        },
      ),
    )
  })
})

// Header names as the core keeps them (lowercase), other than the ones it sets itself.
const headerName = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 12 })
  .map((s) => s.toLowerCase())
  .filter((s) => !/^(ce-|backplane-|content-type$|traceparent$|tracestate$|__proto__$)/.test(s) && s.length > 0)
const headersArb = fc.dictionary(headerName, fc.string({ unit: 'binary', maxLength: 40 }), { maxKeys: 6 })

describe('dead letters: headers with any Unicode survive the round trip', () => {
  it('property: read back and replayed, a dead letter keeps its headers, key and body; only the replay headers are added', () => {
    fc.assert(
      fc.property(
        headersArb,
        fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
        fc.uint8Array(),
        (own, key, value) => {
          const scanned: ScannedMessage = {
            topic: 'orders.dlq',
            key,
            value,
            position: '7',
            headers: {
              ...own,
              'ce-id': 'evt-1',
              [DLQ.reason]: 'schema',
              [DLQ.topic]: 'orders',
              [DLQ.at]: '2026-12-01T09:30:00.000Z',
              [DLQ.group]: 'billing',
              [DLQ.error]: 'Error: ✗ broken',
              [DLQ.attempts]: '1',
            },
          }
          const entry = readDeadLetter(scanned, 'orders', new Map())
          expect(entry).toMatchObject({ id: 'evt-1', reason: 'schema', group: 'billing', status: 'pending', key })
          expect(entry?.headers).toEqual({ ...own, 'ce-id': 'evt-1' })
          const replay = replayMessage(entry as NonNullable<typeof entry>, '2026-12-02T00:00:00.000Z')
          expect(replay).toMatchObject({ topic: 'orders', key, value })
          expect(replay.headers).toEqual({
            ...own,
            'ce-id': 'evt-1',
            [REPLAY.from]: 'orders.dlq@7',
            [REPLAY.at]: '2026-12-02T00:00:00.000Z',
            [REPLAY.group]: 'billing',
            'backplane-published': '2026-12-02T00:00:00.000Z',
          })
        },
      ),
    )
  })

  it('property: end to end on memory: dead-lettered, listed and replayed with the same headers and id', async () => {
    await fc.assert(
      fc.asyncProperty(headersArb, async (own) => {
        const topic = `unicode.${randomUUID().slice(0, 8)}`
        const { broker, state } = await failing(topic)
        try {
          const { id } = await broker.publish(topic, { ok: true }, { headers: own })
          await until(() => state.dead === 1, 10_000, 'the dead letter')
          await sleep(1)
          const [entry] = await broker.deadLetters(topic).list()
          for (const [name, value] of Object.entries(own)) expect(entry?.headers[name]).toBe(value)
          state.healed = true
          await broker.deadLetters(topic).replay()
          await until(() => state.got.length === 2, 10_000, 'the replay')
          const replayed = state.got[1] as Message<unknown>
          expect(replayed.id).toBe(id)
          for (const [name, value] of Object.entries(own)) expect(replayed.headers[name]).toBe(value)
        } finally {
          await broker.close()
        }
      }),
      { numRuns: 25 },
    )
  })
})

describe('dead letters on memory', () => {
  it('gets one by position or by id (the latest of that id), lists the oldest first up to limit', async () => {
    const topic = 'orders'
    const { broker, state } = await failing(topic)
    const ids = [] as string[]
    for (let n = 0; n < 3; n++) ids.push((await broker.publish(topic, { n })).id)
    await until(() => state.dead === 3, 10_000, 'three dead letters')
    await sleep(1)
    const dead = broker.deadLetters(topic)
    expect((await dead.list({ limit: 2 })).map((e) => e.id)).toEqual(ids.slice(0, 2))
    expect(await dead.get('1')).toMatchObject({ id: ids[1], position: '1', data: { n: 1 } })
    expect(await dead.get('no-such')).toBeUndefined()
    await expect(dead.get('')).rejects.toMatchObject({ code: 'MESSAGING_INVALID_OPTIONS' })
    // Replayed, fails again: `get(id)` is the new one.
    await dead.replay({ id: ids[0] })
    await until(() => state.dead === 4, 10_000, 'the replay to fail again')
    await sleep(1)
    expect(await dead.get(ids[0] as string)).toMatchObject({ position: '3', status: 'pending' })
    expect(await dead.get('0')).toMatchObject({ status: 'replayed' })
    await broker.close()
    await expect(dead.list()).rejects.toMatchObject({ code: 'MESSAGING_CLOSED' })
  })

  it('keeps apart the topics that share a dead-letter topic, and replays at most limit', async () => {
    const url = bus()
    const broker = await createBroker(url)
    let dead = 0
    broker.events.on('deadLetter', () => dead++)
    for (const topic of ['a', 'b']) {
      await broker.subscribe(
        topic,
        (m) => {
          // A replayed message is handled: only the first delivery dies, so the dead-letter topic
          // holds exactly the four originals while the replays run.
          if (m.headers[REPLAY.from] === undefined) throw new NonRetryableError('no')
        },
        { group: 'g', deadLetter: 'shared.dlq' },
      )
    }
    await broker.publishBatch('a', [{ data: 1 }, { data: 2 }, { data: 3 }])
    await broker.publish('b', 4)
    await until(() => dead === 4, 10_000, 'four dead letters')
    await sleep(1)
    const a = broker.deadLetters('a', { deadLetterTopic: 'shared.dlq' })
    expect((await a.list()).map((e) => e.data)).toEqual([1, 2, 3])
    expect((await broker.deadLetters('b', { deadLetterTopic: 'shared.dlq' }).list()).map((e) => e.data)).toEqual([4])
    expect(await broker.deadLetters('a').list()).toEqual([])
    expect(await a.replay({ limit: 2 })).toMatchObject({ replayed: 2, skipped: 0 })
    expect(await a.replay({ limit: 2 })).toMatchObject({ replayed: 1, skipped: 2 })
    expect(await a.replay({ again: true })).toMatchObject({ replayed: 3, skipped: 0 })
    expect(() => broker.deadLetters('a', { deadLetterTopic: '' })).toThrow(
      expect.objectContaining({ code: 'MESSAGING_INVALID_OPTIONS' }),
    )
    await broker.close()
  })

  it('replays a plain subscriber’s dead letter to every subscriber (no group to aim at)', async () => {
    const broker = await createBroker(bus())
    const topic = 'plain'
    let failed = false
    let dead = 0
    broker.events.on('deadLetter', () => dead++)
    const seen: string[] = []
    await broker.subscribe(topic, (m) => {
      seen.push(`plain:${m.headers[REPLAY.from] ?? 'first'}`)
      if (!failed) {
        failed = true
        throw new NonRetryableError('once')
      }
    })
    await broker.subscribe(topic, (m) => void seen.push(`group:${m.headers[REPLAY.from] ?? 'first'}`), { group: 'g' })
    await broker.publish(topic, 1)
    await until(() => dead === 1 && seen.length === 2, 10_000, 'the dead letter')
    await sleep(1)
    const [entry] = await broker.deadLetters(topic).list()
    expect(entry?.group).toBeUndefined()
    await broker.deadLetters(topic).replay()
    await until(() => seen.length === 4, 10_000, 'the replay everywhere')
    expect(seen.slice(2).sort()).toEqual([`group:${topic}.dlq@0`, `plain:${topic}.dlq@0`])
    await broker.close()
  })

  it('at least once: a replay whose record was not written is replayed again next time', async () => {
    const url = bus()
    const inner = createMemoryTransport({ name: url.slice('memory://'.length) })
    let refuseRecords = true
    const transport: Transport = {
      ...inner,
      publish: (messages) =>
        refuseRecords && messages.some((m) => m.topic.endsWith('.redriven'))
          ? Promise.reject(new Error('disk full'))
          : inner.publish(messages),
    }
    const broker = createBrokerOver(transport)
    const topic = 'crashy'
    const got: string[] = []
    let dead = 0
    broker.events.on('deadLetter', () => dead++)
    await broker.subscribe(
      topic,
      (m) => {
        got.push(m.headers[REPLAY.from] ?? 'first')
        if (got.length === 1) throw new NonRetryableError('first time')
      },
      { group: 'g' },
    )
    await broker.publish(topic, 1)
    await until(() => dead === 1, 10_000, 'the dead letter')
    await sleep(1)
    const dead1 = broker.deadLetters(topic)
    await expect(dead1.replay()).rejects.toMatchObject({
      code: 'MESSAGING_PUBLISH_FAILED',
      message: expect.stringContaining('disk full'),
    })
    await until(() => got.length === 2, 10_000, 'the replay that went out')
    expect((await dead1.list())[0]?.status).toBe('pending')
    refuseRecords = false
    expect(await dead1.replay()).toMatchObject({ replayed: 1 })
    await until(() => got.length === 3, 10_000, 'the second replay')
    expect((await dead1.list())[0]?.status).toBe('replayed')
    await broker.close()
  })

  it('refuses with MESSAGING_UNSUPPORTED on a transport that cannot read a topic back', async () => {
    const inner = createMemoryTransport({ name: `no-scan-${randomUUID()}` })
    const { scan: _, ...rest } = inner
    const noScan: Transport = { ...rest, capabilities: { ...inner.capabilities, replay: false } }
    const broker: Broker = createBrokerOver(noScan)
    await expect(broker.deadLetters('t').list()).rejects.toMatchObject({
      code: 'MESSAGING_UNSUPPORTED',
      message: expect.stringContaining('keeps no messages'),
    })
    const durable = createBrokerOver({ ...rest, events: new EventEmitter() })
    await expect(durable.deadLetters('t').replay()).rejects.toMatchObject({
      message: expect.stringContaining('no Transport.scan'),
    })
    await Promise.all([broker.close(), durable.close()])
  })

  it('a group skips a replay meant for another group and says so (replaySkipped)', async () => {
    // Through the transport, as a replay is sent: a publish through the API drops the header.
    const transport = createMemoryTransport({ name: `skip-${randomUUID()}` })
    const broker = createBrokerOver(transport)
    const skipped: unknown[] = []
    broker.events.on('replaySkipped', (e) => skipped.push(e))
    const handled: unknown[] = []
    await broker.subscribe('t', (m) => void handled.push(m.data), { group: 'mine' })
    const replay = (data: string, id: string, group: string) => {
      const message = encodeMessage('t', data, 'test', { id })
      return { ...message, headers: { ...message.headers, [REPLAY.group]: group } }
    }
    await transport.publish([replay('not mine', 'x', 'theirs'), replay('mine', 'y', 'mine')])
    await until(() => handled.length === 1 && skipped.length === 1, 10_000, 'one handled, one skipped')
    expect(handled).toEqual(['mine'])
    expect(skipped).toEqual([{ topic: 't', group: 'mine', id: 'x', replayGroup: 'theirs' }])
    await broker.close()
  })
})
