import { describe, expect, it } from 'vitest'
import { createKeyedLimiter } from '../src/limiter.js'
import { sleep } from './sleep.js'

describe('keyed limiter', () => {
  it('runs at most `concurrency` tasks at once', async () => {
    const limiter = createKeyedLimiter(2, false)
    let running = 0
    let max = 0
    const task = async () => {
      running++
      max = Math.max(max, running)
      await sleep(5)
      running--
    }
    await Promise.all(Array.from({ length: 10 }, () => limiter.run(undefined, task)))
    expect(max).toBe(2)
    expect(limiter.active).toBe(0)
    expect(limiter.waiting).toBe(0)
  })

  it('keeps one key in order and lets other keys pass a busy one', async () => {
    const limiter = createKeyedLimiter(4, true)
    const log: string[] = []
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`)
      await sleep(ms)
      log.push(`end ${name}`)
    }
    await Promise.all([
      limiter.run('a', task('a1', 30)),
      limiter.run('a', task('a2', 1)),
      limiter.run('b', task('b1', 1)),
      limiter.run(undefined, task('x', 1)),
    ])
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'))
    expect(log.indexOf('end b1')).toBeLessThan(log.indexOf('end a1'))
    expect(log.indexOf('end x')).toBeLessThan(log.indexOf('end a1'))
  })

  it('passes results and errors through', async () => {
    const limiter = createKeyedLimiter(1, true)
    await expect(limiter.run('k', async () => 42)).resolves.toBe(42)
    await expect(limiter.run('k', async () => Promise.reject(new Error('no')))).rejects.toThrow('no')
    await expect(limiter.run('k', async () => 'after')).resolves.toBe('after')
  })
})
