import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  expectInCatalogue,
  type MetricRecording,
  readCatalogue,
  recordMetrics,
  total,
} from '../../../test/helpers/metric-catalogue.js'
import { formatLogFileName } from '../src/file-names.js'
import { openLogger } from '../src/logger.js'
import { readLogFiles, tempDir } from './helpers/files.js'
import { nodeServer } from './helpers/servers.js'

const PACKAGE = 'packages/logging'
let recording: MetricRecording
beforeAll(() => {
  recording = recordMetrics()
})
afterAll(async () => {
  await recording.stop()
})

/** Captures what is written to stderr until `restore()`. */
function captureStderr() {
  const captured: string[] = []
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())
    return true
  })
  return {
    jsonLines: () =>
      captured
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{')),
    restore: () => spy.mockRestore(),
  }
}

describe('logging metrics', () => {
  it('counts lines dropped over maxBufferSize, as many as the drop event reports', async () => {
    const dir = tempDir()
    const log = openLogger({ service: 'drops', file: { dir, maxBufferSize: '2K' } }, { handleExit: false })
    const reported = new Promise<number>((resolve) => log.files?.events.once('drop', ({ lines }) => resolve(lines)))
    const stderr = captureStderr()
    // In one tick nothing reaches the disk: everything past the first 2K waits, so it is dropped.
    const lines = 500
    for (let i = 0; i < lines; i++) log.info({ i }, 'more than the buffer holds')
    const dropped = await reported
    await log.close()
    stderr.restore()

    const inFile = readLogFiles(dir, 'drops').flatMap((f) => f.lines).length
    expect(dropped).toBeGreaterThan(400)
    expect(inFile + dropped).toBe(lines)
    const recorded = await recording.collect()
    expect(total(recorded, 'backplane.logging.lines.dropped', { reason: 'buffer_full' })).toBe(dropped)
  })

  it('counts lines written to stderr when the disk fails, and after close', async () => {
    // A real full disk: a small tmpfs, as disk-full.test.ts does (the tests run as root).
    const mountPoint = join(tempDir(), 'small-disk')
    mkdirSync(mountPoint)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', mountPoint])
    const stderr = captureStderr()
    try {
      const log = openLogger({ service: 'full', file: { dir: mountPoint, size: '32K' } }, { handleExit: false })
      const failed = new Promise((resolve) => log.files?.events.once('fallback', resolve))
      for (let i = 0; i < 10_000; i++) {
        log.info({ i }, 'filling the disk')
        if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      await failed
      await log.close()
      const onStderr = stderr.jsonLines().length
      log.info('after close')
      stderr.restore()

      const recorded = await recording.collect()
      expect(onStderr).toBeGreaterThan(1000)
      expect(total(recorded, 'backplane.logging.lines.fallback', { reason: 'write_failed' })).toBe(onStderr)
      expect(total(recorded, 'backplane.logging.lines.fallback', { reason: 'closed' })).toBe(1)
    } finally {
      stderr.restore()
      execFileSync('umount', ['-l', mountPoint])
    }
  })

  it('counts failed background tasks by task', async () => {
    const dir = tempDir()
    // An earlier run's "file" that cannot be read: compressing it at start fails.
    mkdirSync(join(dir, formatLogFileName('tasks', Date.UTC(2026, 0, 1), 1)))
    const log = openLogger({ service: 'tasks', file: { dir, compress: 'gzip' } }, { handleExit: false })
    const failure = await new Promise<Error>((resolve) => log.files?.events.once('error', resolve))
    await log.close()
    expect((failure as NodeJS.ErrnoException).code).toBe('EISDIR')
    const recorded = await recording.collect()
    expect(total(recorded, 'backplane.logging.maintenance.errors', { task: 'compress' })).toBe(1)
  })

  it('counts records the OpenTelemetry Logs hand-off failed on', async () => {
    const dir = tempDir()
    const brokenApi = {
      logs: {
        getLogger: () => ({
          enabled: () => true,
          emit: () => {
            throw new Error('exporter broke')
          },
        }),
      },
    }
    const stderr = captureStderr()
    const log = openLogger(
      { service: 'otel', openTelemetryLogs: true, file: { dir } },
      { handleExit: false, loadLogsApi: () => brokenApi as never },
    )
    for (let i = 0; i < 7; i++) log.info({ i }, 'still in the file')
    await log.close()
    stderr.restore()
    expect(readLogFiles(dir, 'otel').flatMap((f) => f.lines)).toHaveLength(7)
    const recorded = await recording.collect()
    expect(total(recorded, 'backplane.logging.otel_logs.failed')).toBe(7)
  })

  it('records http.server.request.duration', async () => {
    const log = openLogger({ service: 'api', file: { dir: tempDir() } }, { handleExit: false })
    const server = await nodeServer(log)
    await fetch(`${server.url}/orders/o-1`)
    await server.close()
    await log.close()
    const recorded = await recording.collect()
    expect(total(recorded, 'http.server.request.duration', { 'http.route': '/orders/:id' })).toBe(1)
  })

  // That the catalogue lists what src creates is test/metric-catalogue.test.ts's part.
  it('recorded every metric of the README catalogue, each as listed there', async () => {
    const recorded = await recording.collect()
    const catalogue = readCatalogue(PACKAGE)
    expect(recorded.map((m) => m.name).sort()).toEqual(catalogue.map((e) => e.name).sort())
    expectInCatalogue(recorded, catalogue)
  })
})
