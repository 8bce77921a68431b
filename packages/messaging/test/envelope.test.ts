import { describe, expect, it } from 'vitest'
import { decodeBody, encodeMessage, publishedAt } from '../src/envelope.js'
import { createBroker, DLQ, type Message, NonRetryableError } from '../src/index.js'
import { randomUUID } from '../src/uuid.js'
import { sleep } from './sleep.js'

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

  it('a republish of a replayed dead letter goes to every group of its topic, not only the one that failed it', () => {
    const copied = encodeMessage('routed', 1, 's', {
      headers: { 'Backplane-Replay-Group': 'billing', 'backplane-replayed-from': 'orders.dlq@3' },
    })
    expect(copied.headers['backplane-replay-group']).toBeUndefined()
    expect(copied.headers['backplane-replayed-from']).toBe('orders.dlq@3')
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
