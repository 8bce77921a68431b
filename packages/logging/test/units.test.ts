import { describe, expect, it } from 'vitest'
import { compareLogFiles, formatLogFileName, type LogFileOnDisk, parseLogFileName } from '../src/file-names.js'
import { selectForRemoval } from '../src/maintenance.js'
import { rollingFileOptionsSchema } from '../src/options.js'
import { isValidInterval, parseSize } from '../src/units.js'

describe('parseSize', () => {
  it.each([
    ['100B', 100],
    ['512K', 512 * 1024],
    ['10M', 10 * 1024 ** 2],
    ['10MB', 10 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['2 MiB', 2 * 1024 ** 2],
    [4096, 4096],
  ])('%s is %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes))

  it.each(['', '10', '10X', '-1M', '1.5M', 'M', 0, -5, 1.5])('rejects %o', (input) => {
    expect(parseSize(input)).toBeUndefined()
  })
})

describe('maxAge', () => {
  const maxAge = (value: string) => rollingFileOptionsSchema.safeParse({ dir: '/tmp/x', maxAge: value }).data?.maxAge
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['14d', 14 * 86_400_000],
    ['2w', 14 * 86_400_000],
  ])('%s', (input, ms) => expect(maxAge(input)).toBe(ms))
  it.each(['', '0d', '1y', 'forever'])('rejects %o', (input) => expect(maxAge(input)).toBeUndefined())
})

describe('isValidInterval', () => {
  it.each(['1d', '7d', '1M', '6h', '12h', '24h', '15m', '30s'])('accepts %s', (v) =>
    expect(isValidInterval(v)).toBe(true),
  )
  it.each(['5h', '7m', '0d', '1y', 'daily', '1.5h'])('rejects %s', (v) => expect(isValidInterval(v)).toBe(false))
})

describe('log file names', () => {
  it('round-trips name, UTC start time and sequence', () => {
    const t = Date.UTC(2026, 10, 22, 23, 5, 9)
    const name = formatLogFileName('orders.api', t, 42)
    expect(name).toBe('orders.api.2026-11-22T23-05-09Z.000042.log')
    expect(parseLogFileName(name)).toEqual({
      file: name,
      name: 'orders.api',
      startedAt: t,
      sequence: 42,
      compressed: false,
    })
    expect(parseLogFileName(`${name}.gz`)?.compressed).toBe(true)
  })

  it('keeps sequences past six digits in order', () => {
    const a = parseLogFileName(formatLogFileName('a', 0, 999_999))
    const b = parseLogFileName(formatLogFileName('a', 0, 1_000_000))
    expect(a && b && compareLogFiles(a, b)).toBeLessThan(0)
  })

  it.each(['orders.log', 'orders.2026-11-22.000001.log', 'x.2026-11-22T23-05-09Z.000001.log.gz.tmp'])(
    'ignores %s',
    (file) => expect(parseLogFileName(file)).toBeUndefined(),
  )
})

describe('retention selection', () => {
  const day = 86_400_000
  const file = (sequence: number, startedAt: number, size = 100, compressed = true): LogFileOnDisk => ({
    file: `a.${sequence}`,
    path: `/logs/a.${sequence}${compressed ? '.gz' : ''}`,
    name: 'a',
    sequence,
    startedAt,
    size,
    compressed,
  })

  it('never removes the current file, even when it alone breaks the limits', () => {
    const files = [file(1, 0, 1000, false)]
    expect(selectForRemoval(files, { maxFiles: 0, maxSize: 10, maxAge: 1 }, 10 * day, '/logs/a.1')).toEqual([])
  })

  it('applies maxAge, then maxFiles, then maxSize, oldest first', () => {
    const files = [file(1, 0), file(2, 1 * day), file(3, 5 * day), file(4, 6 * day), file(5, 7 * day, 100, false)]
    const removed = selectForRemoval(files, { maxAge: 3 * day, maxFiles: 2, maxSize: 150 }, 8.5 * day, '/logs/a.5.gz')
    expect(removed.map((r) => [r.file.sequence, r.reason])).toEqual([
      [1, 'maxAge'],
      [2, 'maxAge'],
      [3, 'maxFiles'],
      [4, 'maxSize'],
    ])
  })
})
