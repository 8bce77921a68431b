import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { openLogger } from '../src/logger.js'
import { readLogFiles, tempDir } from './helpers/files.js'

// A real full disk: a 256 KiB tmpfs (the tests run as root, in CI too).
const mountPoint = join(tempDir(), 'small-disk')
mkdirSync(mountPoint)
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint])
afterAll(() => {
  execFileSync('umount', ['-l', mountPoint])
})

describe('a disk error after start', () => {
  it('switches to stderr with one warning, keeps the app running, and loses no line', async () => {
    const captured: string[] = []
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())
      return true
    })
    const log = openLogger({ service: 'disk', file: { dir: mountPoint, size: '64K' } }, { handleExit: false })
    const fallbacks: Error[] = []
    log.files?.events.on('fallback', (error) => fallbacks.push(error))
    const total = 20_000 // ~1.3 MB of lines: far more than the disk holds
    for (let i = 0; i < total; i++) {
      log.info({ i }, 'filling the disk')
      if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    await log.flush()
    await log.close()
    stderr.mockRestore()

    expect(fallbacks).toHaveLength(1)
    expect((fallbacks[0] as NodeJS.ErrnoException).code).toBe('ENOSPC')
    const warnings = captured.filter((text) => text.startsWith('@backplane/logging:'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/ENOSPC.*logging to stderr from now on/)

    const inFiles = readLogFiles(mountPoint, 'disk').flatMap((f) => f.lines)
    const onStderr = captured
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
    // A line the disk took only in part is written again, whole, to stderr.
    const seen = new Set<number>()
    for (const line of [...inFiles, ...onStderr]) {
      try {
        seen.add((JSON.parse(line) as { i: number }).i)
      } catch {
        // the torn last line in the file
      }
    }
    expect(seen.size).toBe(total)
    expect(inFiles.length).toBeGreaterThan(100)
    expect(onStderr.length).toBeGreaterThan(1000)
  })
})
