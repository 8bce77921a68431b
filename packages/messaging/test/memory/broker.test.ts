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
})
