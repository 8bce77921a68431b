import { backoffDelay } from '@backplane/internal'
import { describe, expect, it } from 'vitest'
import { DEFAULT_RETRY } from '../src/retry.js'

describe('backoff', () => {
  it('grows exponentially up to maxDelay without jitter', () => {
    const options = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 'none' as const }
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(options, a))).toEqual([100, 200, 400, 800, 1000, 1000])
  })
  it('draws full jitter in [0, computed] by default', () => {
    expect(backoffDelay(DEFAULT_RETRY, 3, () => 0)).toBe(0)
    expect(backoffDelay(DEFAULT_RETRY, 3, () => 0.5)).toBe(200)
    expect(backoffDelay(DEFAULT_RETRY, 3, () => 0.999)).toBeLessThanOrEqual(400)
  })
})
