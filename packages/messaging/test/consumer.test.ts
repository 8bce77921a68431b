import { describe, expect, it } from 'vitest'
import { createBroker, RetryAfterError } from '../src/index.js'
import { sleep } from './sleep.js'

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
      { retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 1, factor: 1, jitter: 'none' } },
    )
    await broker.publish('t', 1)
    const deadline = Date.now() + 3000
    while (times.length < 2 && Date.now() < deadline) await sleep(10)
    expect(times).toHaveLength(2)
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(140)
    await sub.close()
    await broker.close()
  })

  it('takes the delay as ms or a duration string', () => {
    expect(new RetryAfterError('busy', '1.5s').delayMs).toBe(1_500)
    expect(new RetryAfterError('busy', 250).delayMs).toBe(250)
    expect(new RetryAfterError('busy', -5).delayMs).toBe(0)
  })
})
