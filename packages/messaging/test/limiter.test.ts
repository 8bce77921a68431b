import { describe, expect, it } from 'vitest'
import { createKeyedLimiter } from '../src/limiter.js'
import { sleep } from './sleep.js'

async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 5_000
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(2)
  }
}

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

  describe('start and finish (no promise per task)', () => {
    it('keeps one key in arrival order, at most `concurrency` at once, and lets other keys pass', async () => {
      const limiter = createKeyedLimiter(3, true)
      const log: string[] = []
      let running = 0
      let max = 0
      const task = ({ key, n, ms }: { key: string; n: number; ms: number }) => {
        running++
        max = Math.max(max, running)
        log.push(`start ${key}${n}`)
        setTimeout(() => {
          running--
          log.push(`end ${key}${n}`)
          limiter.finish(key)
        }, ms)
      }
      for (let n = 0; n < 5; n++)
        for (const key of ['a', 'b', 'c', 'd']) limiter.start(key, task, { key, n, ms: key === 'a' ? 8 : 1 })
      expect(limiter.waiting).toBe(17)
      await until(() => log.length === 40)
      expect(max).toBe(3)
      for (const key of ['a', 'b', 'c', 'd']) {
        const own = log.filter((entry) => entry.split(' ')[1]?.startsWith(key))
        expect(own).toEqual([0, 1, 2, 3, 4].flatMap((n) => [`start ${key}${n}`, `end ${key}${n}`]))
      }
      // The slow key does not hold the others back: they are all done before its last task ends.
      expect(log.indexOf('end d4')).toBeLessThan(log.indexOf('end a4'))
      expect(limiter.active).toBe(0)
      expect(limiter.waiting).toBe(0)
    })

    it('runs tasks that finish at once in a loop, not ever deeper calls', () => {
      const limiter = createKeyedLimiter(1, true)
      const order: number[] = []
      let depth = 0
      let deepest = 0
      const task = (n: number) => {
        depth++
        deepest = Math.max(deepest, depth)
        order.push(n)
        limiter.finish('k')
        depth--
      }
      // The first holds the key: the others queue behind it, then all run when it ends.
      limiter.start('k', () => undefined, -1)
      for (let n = 0; n < 100_000; n++) limiter.start('k', task, n)
      expect(limiter.waiting).toBe(100_000)
      limiter.finish('k')
      expect(order).toEqual(Array.from({ length: 100_000 }, (_, n) => n))
      expect(deepest).toBe(1)
      expect(limiter.active).toBe(0)
      expect(limiter.waiting).toBe(0)
    })

    it('shares the slots and the keys with run', async () => {
      const limiter = createKeyedLimiter(1, true)
      const log: string[] = []
      const done = limiter.run('k', async () => {
        await sleep(5)
        log.push('run')
      })
      limiter.start(
        'k',
        (name: string) => {
          log.push(name)
          limiter.finish('k')
        },
        'start',
      )
      expect(log).toEqual([])
      await done
      await until(() => log.length === 2)
      expect(log).toEqual(['run', 'start'])
    })
  })
})
