import { appendFileSync, existsSync, readdirSync, rmSync, unlinkSync } from 'node:fs'
import { unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { EventEmitter } from 'eventemitter3'
import { createStream } from 'rotating-file-stream'
import { missingTail, nextSequence, prepareDirectory, sizeOf, type WrittenChunk } from './disk.js'
import { formatLogFileName, listLogFiles, parseLogFileName } from './file-names.js'
import { gzipFile, type RemovalReason, selectForRemoval } from './maintenance.js'
import {
  DROPPED_BUFFER_FULL,
  FALLBACK_CLOSED,
  FALLBACK_WRITE_FAILED,
  instruments,
  type MaintenanceTask,
} from './metrics.js'
import {
  parseOptions,
  type ResolvedRollingFileOptions,
  type RollingFileOptions,
  rollingFileOptionsSchema,
} from './options.js'
import { type FlushableSink, registerSink, unregisterSink } from './shutdown.js'

/** Events of a rolling file; all are informational, none needs a listener. */
export interface RollingFileEvents {
  /** A new file was opened for writing. */
  open: (file: string) => void
  /** `file` was closed because of its size or the interval; writing goes on in the next one. */
  rotate: (file: string) => void
  compress: (info: { file: string; compressed: string; bytes: number }) => void
  remove: (info: { file: string; reason: RemovalReason }) => void
  /** Lines dropped because more than `maxBufferSize` was waiting for the disk. */
  drop: (info: { lines: number }) => void
  /** Writing to the file failed; from now on lines go to stderr. */
  fallback: (error: Error) => void
  /** A background task (compression, retention) failed; writing is not affected. */
  error: (error: Error) => void
}

/** A pino destination that writes to size- and time-rolled files. */
export interface RollingFile {
  /** pino calls this with one serialized line. Never blocks; never throws. */
  write(line: string): boolean
  /** Resolves when every line written before the call is in the file (handed to the OS). */
  flush(callback?: (error?: Error) => void): Promise<void>
  /** Writes what is still buffered synchronously; for `process.on('exit')`. */
  flushSync(): void
  /** Flushes, closes the file, and waits for compression and retention work to end. */
  close(): Promise<void>
  /** The file being written, once open. */
  readonly currentFile: string | undefined
  readonly events: EventEmitter<RollingFileEvents>
}

/** Seams for tests and for createLogger; not part of the public API. */
export interface RollingFileInternals {
  now?: () => number
  /** Register with the process-wide exit/signal handler (default true). */
  handleExit?: boolean
}

// Lines are joined into chunks of up to this size: rotating-file-stream awaits one write per
// chunk, so one write per line would cap throughput at a fraction of raw pino's.
const MAX_CHUNK_BYTES = 1024 * 1024
// How long the exit path waits for a write already handed to libuv before writing it itself.
// The write may sit behind other thread-pool work (gzip of rolled files) but runs without the
// main thread, so it lands soon; writing it ourselves first would duplicate it when it does.
const EXIT_WAIT_MS = 2000

/**
 * Creates the destination. Everything that can be wrong with the options or the directory is
 * reported here, synchronously, as a LoggingError; later disk errors switch to stderr.
 */
export function createRollingFile(options: RollingFileOptions & { name: string }): RollingFile {
  return openRollingFile(options)
}

export function openRollingFile(
  options: RollingFileOptions & { name: string },
  internals: RollingFileInternals = {},
): RollingFile {
  const opts = parseOptions(rollingFileOptionsSchema, options, 'file') as ResolvedRollingFileOptions & { name: string }
  const dir = resolve(opts.dir)
  const now = internals.now ?? Date.now
  prepareDirectory(dir)
  const events = new EventEmitter<RollingFileEvents>()

  let sequence = nextSequence(dir, opts.name)
  const firstName = formatLogFileName(opts.name, now(), sequence)
  let generated = 0
  // rotating-file-stream asks for a name with an index it increments until the name is free; ours
  // never exist, since the sequence only grows. `null` asks for the name of the first file.
  const generator = (time: Date | number | null): string => {
    if (time === null || generated++ === 0) return firstName
    sequence += 1
    return formatLogFileName(opts.name, now(), sequence)
  }
  const stream = createStream(generator as (time: Date | number) => string, {
    path: dir,
    size: `${opts.size}B`,
    interval: opts.interval,
    intervalUTC: opts.utc,
    immutable: true,
    ...(opts.mode === undefined ? {} : { mode: opts.mode }),
  })
  // rotating-file-stream reads the time through this method only: pointing it at our clock keeps
  // its interval boundaries, our file names and retention on one clock (and testable).
  ;(stream as unknown as { now: () => Date }).now = () => new Date(now())

  // Lines waiting for the disk: pending[head..] (a head index avoids O(n) shifts).
  let pending: string[] = []
  let head = 0
  let pendingChars = 0
  let acceptedLines = 0
  let writtenLines = 0
  let dropped = 0
  let scheduled = false
  let inflight: WrittenChunk | undefined
  let lastWritten: WrittenChunk | undefined
  let currentFile: string | undefined
  let fileBytes = 0
  let failed: Error | undefined
  let closing: Promise<void> | undefined
  let waiters: { target: number; resolve: () => void }[] = []
  let maintenance: Promise<void> = Promise.resolve()
  let compressing: string | undefined
  // Maintenance tasks run one at a time (one promise chain): this names the one that failed.
  let currentTask: MaintenanceTask = 'recovery'

  stream.on('open', (file: string) => {
    currentFile = file
    events.emit('open', file)
  })
  // Emitted by rotating-file-stream as a rotation starts, before the next write: the byte count
  // we keep in step with its own goes back to zero with it.
  stream.on('rotation', () => {
    fileBytes = 0
  })
  stream.on('rotated', (file: string) => {
    events.emit('rotate', file)
    schedule(async () => {
      if (opts.compress === 'gzip') await compress(file)
      await applyRetention()
    })
  })
  stream.on('error', (error: Error) => fail(error))

  schedule(async () => {
    await recoverEarlierRuns()
    await applyRetention()
  })

  function schedule(work: () => Promise<void>): void {
    maintenance = maintenance.then(work).catch((error: unknown) => {
      instruments().maintenanceErrors.add(1, { task: currentTask })
      events.emit('error', error instanceof Error ? error : new Error(String(error)))
    })
  }

  async function compress(file: string): Promise<void> {
    compressing = file
    currentTask = 'compress'
    try {
      const result = await gzipFile(file, opts.compressionLevel, opts.mode)
      events.emit('compress', { file, compressed: result.path, bytes: result.bytes })
    } finally {
      compressing = undefined
    }
  }

  // At exit a compression may be half done: leave one copy of the file, never two.
  function settleCompressionSync(): void {
    if (compressing === undefined) return
    try {
      if (existsSync(`${compressing}.gz`)) unlinkSync(compressing)
      else rmSync(`${compressing}.gz.tmp`, { force: true })
    } catch {
      // The next start finishes the job (recoverEarlierRuns).
    }
  }

  // Files left by earlier runs: finish interrupted compressions, compress closed files.
  async function recoverEarlierRuns(): Promise<void> {
    currentTask = 'recovery'
    const entries = readdirSync(dir)
    const names = new Set(entries)
    for (const entry of entries) {
      if (entry.endsWith('.log.gz.tmp') && parseLogFileName(entry.slice(0, -4))?.name === opts.name) {
        await unlink(join(dir, entry)).catch(() => {})
        continue
      }
      const parsed = parseLogFileName(entry)
      if (!parsed || parsed.name !== opts.name || parsed.compressed || entry === firstName) continue
      if (names.has(`${entry}.gz`)) await unlink(join(dir, entry)).catch(() => {})
      else if (opts.compress === 'gzip') await compress(join(dir, entry))
    }
  }

  async function applyRetention(): Promise<void> {
    currentTask = 'retention'
    const { maxFiles, maxSize, maxAge } = opts
    if (maxFiles === undefined && maxSize === undefined && maxAge === undefined) return
    const files = await listLogFiles(dir, opts.name)
    for (const { file, reason } of selectForRemoval(files, { maxFiles, maxSize, maxAge }, now(), currentFile)) {
      await unlink(file.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error
      })
      if (file.compressed) await unlink(file.path.slice(0, -3)).catch(() => {})
      events.emit('remove', { file: file.path, reason })
    }
  }

  function write(line: string): boolean {
    if (failed || closing) {
      process.stderr.write(line)
      instruments().linesFallback.add(1, closing ? FALLBACK_CLOSED : FALLBACK_WRITE_FAILED)
      return true
    }
    if (opts.maxBufferSize !== undefined && pendingChars + line.length > opts.maxBufferSize) {
      if (dropped++ === 0) queueMicrotask(reportDrops)
      instruments().linesDropped.add(1, DROPPED_BUFFER_FULL)
      return true
    }
    pending.push(line)
    pendingChars += line.length
    acceptedLines++
    if (!scheduled && !inflight) {
      scheduled = true
      // Let the rest of this tick's lines join the same chunk.
      setImmediate(drain)
    }
    return true
  }

  function reportDrops(): void {
    setTimeout(() => {
      const lines = dropped
      dropped = 0
      process.stderr.write(
        `@backplane/logging: dropped ${lines} log lines: more than maxBufferSize was waiting for the disk\n`,
      )
      events.emit('drop', { lines })
    }, 1000).unref()
  }

  /** Takes the next chunk: whole lines, up to MAX_CHUNK_BYTES, ending at the line that fills the file. */
  function takeChunk(): { chunk: Buffer; lines: number } {
    const room = opts.size - fileBytes
    let bytes = 0
    let chars = 0
    let end = head
    while (end < pending.length) {
      const line = pending[end] as string
      bytes += Buffer.byteLength(line)
      chars += line.length
      end++
      if (bytes >= room || bytes >= MAX_CHUNK_BYTES) break
    }
    const lines = pending.slice(head, end)
    head = end
    pendingChars -= chars
    if (head === pending.length) {
      pending = []
      head = 0
    } else if (head > 4096 && head * 2 > pending.length) {
      pending = pending.slice(head)
      head = 0
    }
    return { chunk: Buffer.from(lines.join('')), lines: lines.length }
  }

  function drain(): void {
    scheduled = false
    if (inflight || failed || head >= pending.length) return
    const { chunk, lines } = takeChunk()
    inflight = { chunk, lines, file: currentFile, offset: fileBytes }
    fileBytes += chunk.length
    stream.write(chunk, (error?: Error | null) => {
      if (error) return fail(error)
      writtenLines += inflight?.lines ?? 0
      lastWritten = inflight
      inflight = undefined
      settleWaiters()
      drain()
    })
  }

  function settleWaiters(): void {
    if (waiters.length === 0) return
    const done = waiters.filter((w) => writtenLines >= w.target)
    if (done.length === 0) return
    waiters = waiters.filter((w) => writtenLines < w.target)
    for (const w of done) w.resolve()
  }

  /**
   * Disk errors switch to stderr: the app keeps running and every accepted line is still written.
   * rotating-file-stream ignores short writes (a full disk takes part of a chunk, then fails the
   * next one), so what the file really holds is read back from its size: any line it lacks, or
   * holds only in part, goes to stderr whole.
   */
  function fail(error: Error): void {
    if (failed) return
    failed = error
    process.stderr.write(
      `@backplane/logging: writing to ${currentFile ?? dir} failed (${error.message}); logging to stderr from now on\n`,
    )
    let lines = pending.length - head
    for (const written of [lastWritten, inflight]) {
      const missing = written && missingTail(written)
      if (missing) {
        process.stderr.write(missing)
        lines += countLines(missing)
      }
    }
    process.stderr.write(pending.slice(head).join(''))
    if (lines > 0) instruments().linesFallback.add(lines, FALLBACK_WRITE_FAILED)
    writtenLines = acceptedLines
    pending = []
    head = 0
    inflight = undefined
    settleWaiters()
    events.emit('fallback', error)
    stream.destroy()
  }

  function flush(callback?: (error?: Error) => void): Promise<void> {
    const target = acceptedLines
    const done =
      writtenLines >= target
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiters.push({ target, resolve })
            if (!scheduled && !inflight) drain()
          })
    return callback ? done.then(() => callback(), callback) : done
  }

  function flushSync(): void {
    settleCompressionSync()
    if (failed) return
    const file = inflight?.file ?? currentFile ?? join(dir, firstName)
    if (inflight) writeInflightSync(inflight)
    if (head < pending.length) {
      appendFileSync(currentFile ?? file, pending.slice(head).join(''))
      writtenLines = acceptedLines
      pending = []
      head = 0
    }
  }

  // The chunk handed to libuv may or may not have reached the file when the process exits: wait
  // a little for it, then write whatever part of it the file does not have.
  function writeInflightSync(chunk: { chunk: Buffer; file: string | undefined; offset: number }): void {
    const file = chunk.file ?? currentFile ?? join(dir, firstName)
    const end = chunk.offset + chunk.chunk.length
    const deadline = Date.now() + EXIT_WAIT_MS
    let size = sizeOf(file)
    while (size < end && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
      size = sizeOf(file)
    }
    if (size < end) appendFileSync(file, chunk.chunk.subarray(Math.max(0, size - chunk.offset)))
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      await flushUntilIdle()
      if (!failed) await new Promise<void>((resolve) => stream.end(resolve))
      await maintenance
      unregisterSink(sink)
    })()
    return closing
  }

  async function flushUntilIdle(): Promise<void> {
    const target = acceptedLines
    if (writtenLines >= target) return
    await new Promise<void>((resolve) => {
      waiters.push({ target, resolve })
      if (!scheduled && !inflight) drain()
    })
  }

  const sink: FlushableSink = { flush: () => flush(), flushSync }
  if (internals.handleExit !== false) registerSink(sink)

  return {
    write,
    flush,
    flushSync,
    close,
    get currentFile() {
      return currentFile
    },
    events,
  }
}

function countLines(buffer: Buffer): number {
  let lines = 0
  for (let at = buffer.indexOf(10); at !== -1; at = buffer.indexOf(10, at + 1)) lines++
  return lines
}
