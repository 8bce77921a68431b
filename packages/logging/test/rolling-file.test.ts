import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { formatLogFileName, listLogFiles, parseLogFileName } from '../src/file-names.js'
import { openRollingFile as createRollingFile, type RollingFile } from '../src/rolling-file.js'
import { readLogFiles, tempDir } from './helpers/files.js'

const DAY = 86_400_000
const line = (i: number, pad = 0) => `${JSON.stringify({ i, msg: 'x'.repeat(pad) })}\n`

function fakeClock(start: number) {
  let t = start
  return { now: () => t, set: (v: number) => (t = v) }
}

async function writeLines(file: RollingFile, from: number, count: number, pad = 40): Promise<void> {
  for (let i = from; i < from + count; i++) file.write(line(i, pad))
  await file.flush()
}

function indexes(dir: string, name = 'app'): number[] {
  return readLogFiles(dir, name).flatMap((f) => f.lines.map((l) => (JSON.parse(l) as { i: number }).i))
}

describe('rolling by size', () => {
  it('rolls when a file reaches the size, every file within size plus one line, no line lost or split', async () => {
    const dir = tempDir()
    const file = createRollingFile({ dir, name: 'app', size: '16K' }, { handleExit: false })
    await writeLines(file, 0, 2000, 60)
    await file.close()
    const files = readLogFiles(dir, 'app')
    expect(files.length).toBeGreaterThanOrEqual(10)
    const longest = Math.max(...files.flatMap((f) => f.lines.map((l) => Buffer.byteLength(l) + 1)))
    for (const f of files) expect(f.bytes).toBeLessThanOrEqual(16 * 1024 + longest)
    // Every closed file reached the bound: rotation happened because of size, not early.
    for (const f of files.slice(0, -1)) expect(f.bytes).toBeGreaterThanOrEqual(16 * 1024)
    expect(indexes(dir)).toEqual([...Array(2000).keys()])
  })

  it('names sort in time order and sequence numbers only grow', async () => {
    const dir = tempDir()
    const file = createRollingFile({ dir, name: 'app', size: '4K' }, { handleExit: false })
    await writeLines(file, 0, 300)
    await file.close()
    const names = readdirSync(dir).sort()
    const sequences = names.map((n) => parseLogFileName(n)?.sequence)
    expect(sequences).toEqual([...sequences].sort((a, b) => (a ?? 0) - (b ?? 0)))
    expect(new Set(sequences).size).toBe(names.length)
  })
})

describe('rolling by time (fake clock)', () => {
  it('rolls at the UTC day boundary and names the new file by its start', async () => {
    const dir = tempDir()
    const midnight = Date.UTC(2030, 0, 2)
    const clock = fakeClock(midnight - 150)
    const file = createRollingFile({ dir, name: 'app', interval: '1d' }, { handleExit: false, now: clock.now })
    await writeLines(file, 0, 10)
    clock.set(midnight + 5)
    // rotating-file-stream's timer runs on real time; it fires ~150 ms after it was armed.
    await new Promise((resolve) => setTimeout(resolve, 400))
    await writeLines(file, 10, 10)
    await file.close()
    const files = readLogFiles(dir, 'app')
    expect(files.map((f) => f.file)).toEqual([
      formatLogFileName('app', midnight - 150, 1),
      formatLogFileName('app', midnight + 5, 2),
    ])
    expect(files.map((f) => f.lines.length)).toEqual([10, 10])
  })

  it('rolls by size and by time at once', async () => {
    const dir = tempDir()
    const start = Date.UTC(2030, 0, 2, 11, 59, 59, 800)
    const clock = fakeClock(start)
    const file = createRollingFile(
      { dir, name: 'app', size: '8K', interval: '12h' },
      { handleExit: false, now: clock.now },
    )
    await writeLines(file, 0, 400, 60)
    const beforeNoon = readLogFiles(dir, 'app').length
    clock.set(Date.UTC(2030, 0, 2, 12, 0, 0, 10))
    await new Promise((resolve) => setTimeout(resolve, 500))
    await writeLines(file, 400, 50, 60)
    await file.close()
    const files = readLogFiles(dir, 'app')
    expect(beforeNoon).toBeGreaterThanOrEqual(4)
    expect(files.length).toBe(beforeNoon + 1)
    const last = files.at(-1)
    expect(last?.file).toContain('2030-01-02T12-00-00Z')
    expect(last?.lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(
      [...Array(50).keys()].map((i) => i + 400),
    )
    expect(indexes(dir)).toEqual([...Array(450).keys()])
  })
})

describe('gzip', () => {
  it('compresses rolled files off the write path and leaves the current one plain', async () => {
    const dir = tempDir()
    const file = createRollingFile({ dir, name: 'app', size: '8K', compress: 'gzip' }, { handleExit: false })
    const compressed: string[] = []
    file.events.on('compress', ({ compressed: gz }) => compressed.push(gz))
    await writeLines(file, 0, 1000)
    await file.close()
    const names = readdirSync(dir)
    const plain = names.filter((n) => n.endsWith('.log'))
    expect(plain).toHaveLength(1)
    expect(names.filter((n) => n.endsWith('.gz')).length).toBe(names.length - 1)
    expect(compressed.length).toBe(names.length - 1)
    expect(names.some((n) => n.endsWith('.tmp'))).toBe(false)
    expect(indexes(dir)).toEqual([...Array(1000).keys()])
  })

  it('finishes the work of an earlier run at start: compresses its files, drops partial archives', async () => {
    const dir = tempDir()
    const t = Date.UTC(2030, 0, 1)
    const old = formatLogFileName('app', t, 7)
    writeFileSync(join(dir, old), line(1))
    writeFileSync(join(dir, `${formatLogFileName('app', t, 6)}.gz.tmp`), 'partial')
    const done = formatLogFileName('app', t, 5)
    writeFileSync(join(dir, `${done}.gz`), gzipSync(line(0)))
    writeFileSync(join(dir, done), line(0)) // compressed but not yet removed when that run died
    const file = createRollingFile({ dir, name: 'app', compress: 'gzip' }, { handleExit: false, now: () => t + DAY })
    await writeLines(file, 2, 1)
    await file.close()
    const names = readdirSync(dir).sort()
    expect(names).toHaveLength(3)
    expect(names[0]).toBe(`${done}.gz`)
    expect(names[1]).toBe(`${old}.gz`)
    expect(parseLogFileName(names[2] as string)?.sequence).toBe(8)
    expect(indexes(dir)).toEqual([0, 1, 2])
  })
})

describe('listLogFiles', () => {
  it('lists a file caught between compression and removal once, as its complete .gz', async () => {
    const dir = tempDir()
    const t = Date.UTC(2030, 0, 1)
    const twin = formatLogFileName('app', t, 1)
    writeFileSync(join(dir, twin), line(0))
    writeFileSync(join(dir, `${twin}.gz`), gzipSync(line(0)))
    writeFileSync(join(dir, formatLogFileName('app', t, 2)), line(1))
    const files = await listLogFiles(dir, 'app')
    expect(files.map((f) => f.file)).toEqual([`${twin}.gz`, formatLogFileName('app', t, 2)])
  })
})

describe('retention', () => {
  it('keeps maxFiles across restarts, counting files of earlier runs, never reusing a number', async () => {
    const dir = tempDir()
    const seen = new Set<string>()
    for (let run = 0; run < 3; run++) {
      const file = createRollingFile(
        { dir, name: 'app', size: '4K', maxFiles: 4, compress: 'gzip' },
        { handleExit: false },
      )
      file.events.on('open', (f) => {
        expect(seen.has(f)).toBe(false)
        seen.add(f)
      })
      await writeLines(file, run * 300, 300)
      await file.close()
    }
    const files = readLogFiles(dir, 'app')
    expect(files).toHaveLength(4)
    const sequences = files.map((f) => parseLogFileName(f.file)?.sequence ?? 0)
    expect(Math.max(...sequences)).toBe(seen.size)
    // The survivors are the newest lines, contiguous up to the last one written.
    const kept = indexes(dir)
    expect(kept.at(-1)).toBe(899)
    expect(kept).toEqual([...Array(kept.length).keys()].map((i) => i + 900 - kept.length))
  })

  it('keeps the total size under maxSize', async () => {
    const dir = tempDir()
    const file = createRollingFile({ dir, name: 'app', size: '4K', maxSize: '20K' }, { handleExit: false })
    await writeLines(file, 0, 1000)
    await file.close()
    const total = readLogFiles(dir, 'app').reduce((sum, f) => sum + f.bytes, 0)
    expect(total).toBeLessThanOrEqual(20 * 1024)
    expect(total).toBeGreaterThan(12 * 1024)
  })

  it('removes files older than maxAge by the times in their names, not mtime', async () => {
    const dir = tempDir()
    const now = Date.UTC(2030, 5, 15)
    const names = [20, 10, 8, 6].map((days, i) => formatLogFileName('app', now - days * DAY, i + 1))
    for (const name of names) writeFileSync(join(dir, name), line(0))
    writeFileSync(join(dir, 'other.2030-01-01T00-00-00Z.000001.log'), line(0))
    const removed: string[] = []
    const file = createRollingFile({ dir, name: 'app', maxAge: '7d' }, { handleExit: false, now: () => now })
    file.events.on('remove', ({ file: f, reason }) => removed.push(`${reason}:${f.split('/').at(-1)}`))
    await writeLines(file, 1, 1)
    await file.close()
    // Closed at day -10 and day -8: older than 7 days. Closed at day -6 (the next one opened): kept.
    expect(removed.sort()).toEqual([`maxAge:${names[0]}`, `maxAge:${names[1]}`].sort())
    expect(existsSync(join(dir, names[2] as string))).toBe(true)
    expect(existsSync(join(dir, 'other.2030-01-01T00-00-00Z.000001.log'))).toBe(true)
  })
})

describe('sustained load', () => {
  it('200k lines over dozens of rotations: none lost, none duplicated, all valid JSON, no file over the bound', async () => {
    const dir = tempDir()
    const size = 512 * 1024
    const file = createRollingFile({ dir, name: 'app', size, compress: 'gzip' }, { handleExit: false })
    const total = 200_000
    for (let i = 0; i < total; i += 2000) {
      for (let j = i; j < i + 2000; j++)
        file.write(`${JSON.stringify({ level: 30, time: Date.now(), i: j, msg: 'order accepted' })}\n`)
      // Yield so writes and rotations interleave with logging, as in a running service.
      await new Promise((resolve) => setImmediate(resolve))
    }
    await file.close()
    const files = readLogFiles(dir, 'app')
    expect(files.length).toBeGreaterThanOrEqual(24)
    const seen = new Uint8Array(total)
    let longest = 0
    for (const f of files) {
      for (const l of f.lines) {
        const record = JSON.parse(l) as { i: number }
        seen[record.i] = (seen[record.i] ?? 0) + 1
        longest = Math.max(longest, Buffer.byteLength(l) + 1)
      }
    }
    for (const f of files) expect(f.bytes).toBeLessThanOrEqual(size + longest)
    expect(seen.filter((n) => n === 0).length).toBe(0)
    expect(seen.filter((n) => n > 1).length).toBe(0)
  })
})

describe('bad input', () => {
  it.each([
    [{ size: '10 parsecs' }, /size: invalid size "10 parsecs": expected a positive size like "512K"/],
    [{ size: 0 }, /size: invalid size 0/],
    [{ interval: '7h' }, /interval: invalid interval "7h": expected .* divides 24 hours/],
    [{ interval: 'daily' }, /interval: invalid interval "daily"/],
    [{ maxAge: 'forever' }, /maxAge: expected a duration like 500ms, .* got "forever"/],
    [{ compress: 'zip' }, /compress/],
    [{ rotate: 3 }, /unknown option\(s\) "rotate"/],
  ])('rejects %o with a LoggingError that says what was expected', (bad, message) => {
    const dir = tempDir()
    const create = () => createRollingFile({ dir, name: 'app', ...(bad as object) }, { handleExit: false })
    expect(create).toThrowError(message)
    try {
      create()
    } catch (error) {
      expect((error as { code: string }).code).toBe('LOGGING_INVALID_OPTIONS')
    }
  })

  it('rejects a directory that cannot be created', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'not-a-dir'), '')
    expect(() =>
      createRollingFile({ dir: join(dir, 'not-a-dir', 'logs'), name: 'app' }, { handleExit: false }),
    ).toThrowError(
      expect.objectContaining({ code: 'LOGGING_DIR_UNWRITABLE', message: expect.stringMatching(/ENOTDIR/) }),
    )
  })
})
