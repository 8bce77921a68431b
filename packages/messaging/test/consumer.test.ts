import { describe, expect, it } from 'vitest'
import { createBroker, DLQ, NonRetryableError, RetryAfterError } from '../src/index.js'
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

describe('NonRetryableError', () => {
  it('dead-letters at once, with reason non-retryable, or max-attempts when the handler says it ran out', async () => {
    const broker = await createBroker('memory://non-retryable-reason')
    const reasons: { id: string; reason: string; attempts: string | undefined }[] = []
    const dlq = await broker.subscribe(
      't.dlq',
      (m) =>
        void reasons.push({ id: m.id, reason: m.headers[DLQ.reason] as string, attempts: m.headers[DLQ.attempts] }),
      { from: 'earliest' },
    )
    const sub = await broker.subscribe(
      't',
      (m) => {
        throw m.id === 'counted'
          ? new NonRetryableError('gave up after 5 calls', { reason: 'max-attempts' })
          : new NonRetryableError('bad order')
      },
      { retry: { maxAttempts: 5 } },
    )
    await broker.publish('t', 1, { id: 'plain' })
    await broker.publish('t', 2, { id: 'counted' })
    const deadline = Date.now() + 3000
    while (reasons.length < 2 && Date.now() < deadline) await sleep(10)
    expect(reasons.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'counted', reason: 'max-attempts', attempts: '1' },
      { id: 'plain', reason: 'non-retryable', attempts: '1' },
    ])
    expect(new NonRetryableError('x').reason).toBe('non-retryable')
    await Promise.all([sub.close(), dlq.close()])
    await broker.close()
  })
})
