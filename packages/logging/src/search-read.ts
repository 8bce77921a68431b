import { createReadStream } from 'node:fs'
import { pipeline, type Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { matches, toLogRecord } from './search-record.js'
import { createLineScanner, type LineFilter } from './search-scan.js'
import type { LogRecord, PlannedFile, Query, SearchWarning } from './search-types.js'

/** What reading a file produces, in file order: its matching records, then maybe a warning. */
export type ReadItem = { record: LogRecord } | { warning: SearchWarning }

/** A file being read ahead of its consumer, into a bounded queue. */
export interface FileReader {
  /** The next item; undefined once the file is done (or the reader closed). */
  next(): Promise<ReadItem | undefined>
  /** Stops reading and closes the file. */
  close(): void
}

// Big reads and inflate chunks: each chunk is one round trip between the thread pool (where zlib
// inflates) and the main thread, and it is searched with one native call per candidate line.
const READ_BYTES = 256 * 1024
const INFLATE_BYTES = 128 * 1024
// Matching records held for a consumer that is busy elsewhere (the merge waits for another
// file's record): above either limit the file stops being read, so memory does not grow with it.
const HIGH_WATER_RECORDS = 1024
const HIGH_WATER_CHARS = 1024 * 1024

/**
 * Starts reading `file` at once (decompression runs on libuv's thread pool, so several files
 * are inflated in parallel while the main thread scans what is ready) and keeps its matches until
 * asked for them.
 */
export function startReading(file: PlannedFile, query: Query, filter: LineFilter): FileReader {
  let items: (ReadItem | undefined)[] = []
  let head = 0
  let queuedChars = 0
  let done = false
  let paused = false
  let waiting: ((item: ReadItem | undefined) => void) | undefined

  const input = createReadStream(file.path, { highWaterMark: READ_BYTES })
  // pipeline forwards a read error (EACCES, ENOENT) to the gunzip stream listened to.
  const stream: Readable = file.compressed
    ? pipeline(input, createGunzip({ chunkSize: INFLATE_BYTES }), () => {})
    : input

  let notJson = 0
  let lastNotJsonLine = 0
  const scanner = createLineScanner(filter, (raw, lineNumber) => {
    if (raw.trim() === '') return
    const record = toLogRecord(raw, file, lineNumber)
    if (record === undefined) {
      notJson++
      lastNotJsonLine = lineNumber
    } else if (matches(record, file, query)) {
      push({ record })
    }
  })

  function push(item: ReadItem): void {
    if (waiting !== undefined) {
      const resolve = waiting
      waiting = undefined
      resolve(item)
      return
    }
    items.push(item)
    if ('record' in item) queuedChars += item.record.raw.length
  }

  function finish(): void {
    done = true
    if (waiting !== undefined) {
      const resolve = waiting
      waiting = undefined
      resolve(undefined)
    }
  }

  stream.on('data', (chunk: Buffer) => {
    scanner.push(chunk)
    if (!paused && (items.length - head > HIGH_WATER_RECORDS || queuedChars > HIGH_WATER_CHARS)) {
      paused = true
      stream.pause()
    }
  })
  stream.on('end', () => {
    scanner.end()
    // The last line of a file being written may be incomplete: not reported.
    const skipped = notJson - (lastNotJsonLine === scanner.lines ? 1 : 0)
    if (skipped > 0)
      push({ warning: { path: file.path, message: `${file.path}: skipped ${skipped} line(s) that are not JSON` } })
    finish()
  })
  stream.on('error', (error) => {
    const message = `cannot read ${file.path} after line ${scanner.lines}: ${errorMessage(error)}; skipped the rest of it`
    push({ warning: { path: file.path, message, cause: error } })
    finish()
    input.destroy()
  })

  return {
    next() {
      if (head < items.length) {
        const item = items[head] as ReadItem
        items[head++] = undefined
        if ('record' in item) queuedChars -= item.record.raw.length
        if (head === items.length) {
          items = []
          head = 0
        }
        if (paused && items.length - head <= HIGH_WATER_RECORDS / 2 && queuedChars <= HIGH_WATER_CHARS / 2) {
          paused = false
          stream.resume()
        }
        return Promise.resolve(item)
      }
      if (done) return Promise.resolve(undefined)
      return new Promise((resolve) => {
        waiting = resolve
      })
    },
    close() {
      stream.destroy()
      input.destroy()
      items = []
      head = 0
      finish()
    },
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
