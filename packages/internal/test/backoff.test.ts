import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Backoff, backoffDelay, backoffSequence, retrySchema } from '../src/index.js'

const policy = (jitter: Backoff['jitter']): Backoff => ({
  maxAttempts: 5,
  initialDelay: 100,
  maxDelay: 1_000,
  factor: 2,
  jitter,
})

describe('backoffDelay', () => {
  it('grows by factor up to maxDelay without jitter', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy('none'), n))).toEqual([100, 200, 400, 800, 1000, 1000])
  })

  it('draws full jitter in [0, computed] and equal jitter in [computed/2, computed]', () => {
    expect(backoffDelay(policy('full'), 3, () => 0)).toBe(0)
    expect(backoffDelay(policy('full'), 3, () => 0.5)).toBe(200)
    expect(backoffDelay(policy('equal'), 3, () => 0)).toBe(200)
    expect(backoffDelay(policy('equal'), 3, () => 0.999_999)).toBe(400)
  })

  it('stays within [0, maxDelay] for any attempt and factor', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.double({ min: 1, max: 100, noNaN: true }),
        fc.constantFrom<Backoff['jitter']>('full', 'equal', 'none'),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (attempt, factor, jitter, r) => {
          const ms = backoffDelay({ initialDelay: 50, maxDelay: 5_000, factor, jitter }, attempt, () => r)
          expect(ms).toBeGreaterThanOrEqual(0)
          expect(ms).toBeLessThanOrEqual(5_000)
        },
      ),
    )
  })

  it('counts attempts in a sequence and starts over on reset', () => {
    const sequence = backoffSequence(policy('none'))
    expect([sequence.next(), sequence.next(), sequence.next()]).toEqual([100, 200, 400])
    sequence.reset()
    expect(sequence.next()).toBe(100)
  })
})

describe('retrySchema', () => {
  const schema = retrySchema(policy('full'))

  it('fills defaults and parses durations', () => {
    expect(schema.parse({})).toEqual(policy('full'))
    expect(schema.parse({ initialDelay: '1s', maxDelay: '1m', jitter: false, maxAttempts: 9 })).toEqual({
      maxAttempts: 9,
      initialDelay: 1_000,
      maxDelay: 60_000,
      factor: 2,
      jitter: 'none',
    })
    expect(schema.parse({ jitter: true }).jitter).toBe('full')
  })

  it('refuses unknown keys and bad values', () => {
    expect(schema.safeParse({ initialMs: 5 }).success).toBe(false)
    expect(schema.safeParse({ jitter: 'some' }).success).toBe(false)
    expect(schema.safeParse({ maxAttempts: 0 }).success).toBe(false)
    expect(schema.safeParse({ factor: 0.5 }).success).toBe(false)
  })
})
