import { describe, expect, it } from 'vitest'
import { manualClock } from '../src/index.js'

const NOW = Date.UTC(2030, 0, 1)

describe('the manual clock', () => {
  it('runs callbacks in time order as it advances, and only those due', async () => {
    const clock = manualClock(NOW)
    const seen: string[] = []
    clock.setTimeout(() => seen.push('b'), 200)
    clock.setTimeout(() => seen.push('a'), 100)
    const cancelled = clock.setTimeout(() => seen.push('never'), 150)
    clock.clearTimeout(cancelled)
    await clock.advance(150)
    expect(seen).toEqual(['a'])
    await clock.advance(50)
    expect(seen).toEqual(['a', 'b'])
    expect(clock.now()).toBe(NOW + 200)
    expect(clock.pending).toBe(0)
  })
})
