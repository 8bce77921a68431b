import { randomUUID } from 'node:crypto'
import { brokerConformance, until } from '@backplane/messaging/testing'
import { describe, expect, it } from 'vitest'
import { createBroker } from '../../src/index.js'

brokerConformance('memory', {
  connect: () => createBroker(`memory://conformance-${randomUUID().slice(0, 8)}`),
})

describe('memory broker', () => {
  it('keeps about `retain` messages of a topic nobody reads, not every one ever published', async () => {
    const broker = await createBroker(`memory://retain-${randomUUID().slice(0, 8)}`, { memory: { retain: 10 } })
    for (let i = 0; i < 3000; i += 100) {
      await broker.publishBatch(
        'unread',
        Array.from({ length: 100 }, (_, k) => ({ data: i + k })),
      )
    }
    const seen: number[] = []
    await broker.subscribe('unread', (m) => void seen.push(m.data as number), { group: 'late', from: 'earliest' })
    await until(() => seen.at(-1) === 2999, 5_000, 'the last message')
    // Trimming waits until over 1024 messages can go at once: between `retain` and that many more are left.
    expect(seen.length).toBeGreaterThanOrEqual(10)
    expect(seen.length).toBeLessThanOrEqual(10 + 1100)
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, k) => 3000 - seen.length + k))
    await broker.close()
  })

  it('delivers while a publisher that never yields to I/O goes on publishing, so nothing piles up', async () => {
    const broker = await createBroker(`memory://pace-${randomUUID().slice(0, 8)}`)
    let handled = 0
    await broker.subscribe('paced', () => void handled++, { group: 'g', concurrency: 64 })
    // The loop awaits only promises (microtasks): no timer or I/O callback runs until it ends.
    let mostBehind = 0
    for (let i = 0; i < 20_000; i += 100) {
      await broker.publishBatch(
        'paced',
        Array.from({ length: 100 }, (_, k) => ({ data: i + k })),
      )
      mostBehind = Math.max(mostBehind, i + 100 - handled)
    }
    const publishedWhenLoopEnded = handled
    await until(() => handled === 20_000, 10_000, 'every message')
    // Before, delivery waited for the next turn: all 20,000 were queued before the first was handled.
    expect(publishedWhenLoopEnded).toBeGreaterThan(19_000)
    expect(mostBehind).toBeLessThan(1_000)
    await broker.close()
  })

  it('lets timers run while handlers publish to each other (a ping-pong earns no extra turn)', async () => {
    const url = `memory://ping-pong-${randomUUID().slice(0, 8)}`
    const [a, b] = [await createBroker(url), await createBroker(url)]
    const CAP = 200_000
    let bounces = 0
    let stopped = false
    const bounce = (to: typeof a, topic: string) => () => {
      if (stopped || ++bounces >= CAP) return
      void to.publish(topic, bounces)
    }
    await a.subscribe('ping', bounce(b, 'pong'), { group: 'g' })
    await b.subscribe('pong', bounce(a, 'ping'), { group: 'g' })
    let bouncesWhenTimerRan = -1
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        bouncesWhenTimerRan = bounces
        stopped = true
        resolve()
      }, 20),
    )
    await a.publish('ping', 0)
    await timer
    // A frozen event loop runs the 20 ms timer only once the cap has stopped the bouncing.
    expect(bouncesWhenTimerRan).toBeGreaterThan(0)
    expect(bouncesWhenTimerRan).toBeLessThan(CAP - 1)
    await Promise.all([a.close(), b.close()])
  })

  it('keeps per-key order and the concurrency limit when handlers that return at once and handlers that wait mix', async () => {
    const broker = await createBroker(`memory://direct-${randomUUID().slice(0, 8)}`)
    const seen = new Map<string, number[]>()
    let running = 0
    let most = 0
    let handled = 0
    await broker.subscribe(
      'mixed',
      (m) => {
        const { i } = m.data as { i: number }
        const own = seen.get(m.key as string) ?? []
        if (own.length === 0) seen.set(m.key as string, own)
        own.push(i)
        if (i % 50 !== 0) {
          handled++
          return
        }
        running++
        most = Math.max(most, running)
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            running--
            handled++
            resolve()
          }, 1),
        )
      },
      { group: 'g', concurrency: 4 },
    )
    // Batches of 1,000 published at once: a handler that returns at once must not make the stack grow.
    for (let i = 0; i < 20_000; i += 1_000) {
      await broker.publishBatch(
        'mixed',
        Array.from({ length: 1_000 }, (_, k) => ({ data: { i: i + k }, key: `k${(i + k) % 8}` })),
      )
    }
    await until(() => handled === 20_000, 10_000, 'every message')
    expect(most).toBeGreaterThan(1)
    expect(most).toBeLessThanOrEqual(4)
    for (let k = 0; k < 8; k++) {
      expect(seen.get(`k${k}`)).toEqual(Array.from({ length: 2_500 }, (_, n) => n * 8 + k))
    }
    await broker.close()
  })
})
