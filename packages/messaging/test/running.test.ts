import { describe, expect, it } from 'vitest'
import { RunningDeliveries } from '../src/running.js'
import type { TransportDelivery } from '../src/transport.js'
import { sleep } from './sleep.js'

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
