import { availableParallelism } from 'node:os'
import { type FileReader, startReading } from './search-read.js'
import type { LineFilter } from './search-scan.js'
import type { LogRecord, PlannedFile, Query } from './search-types.js'

/** The records of files read one after the other (one service in one directory), in file order. */
export interface RecordSource {
  next(): Promise<LogRecord | undefined>
  close(): void
}

/**
 * How many files past the current one each source reads ahead, so that the thread pool has about
 * one file per core to inflate even when few sources are searched (a single service, say).
 */
export function filesAhead(sources: number): number {
  const wanted = Math.max(2, availableParallelism())
  return sources >= wanted ? 0 : Math.ceil(wanted / Math.max(1, sources)) - 1
}

/**
 * Reads `files` in order, up to `ahead` of them beyond the one being consumed at the same time.
 * A file's warning reaches `query.warn` when the consumer gets to it, as if read in order.
 */
export function readSource(files: PlannedFile[], query: Query, filter: LineFilter, ahead: number): RecordSource {
  const readers: (FileReader | undefined)[] = []
  let current = 0
  let closed = false
  return {
    async next() {
      while (!closed && current < files.length) {
        for (let i = current; i < Math.min(files.length, current + 1 + ahead); i++) {
          readers[i] ??= startReading(files[i] as PlannedFile, query, filter)
        }
        const item = await (readers[current] as FileReader).next()
        if (closed) return undefined
        if (item === undefined) {
          readers[current++] = undefined
        } else if ('warning' in item) {
          query.warn(item.warning)
        } else {
          return item.record
        }
      }
      return undefined
    },
    close() {
      closed = true
      for (const reader of readers) reader?.close()
      readers.length = 0
    },
  }
}

/**
 * k-way merge of sources that are each in time order. A linear scan for the earliest head is
 * enough: k is the number of services times directories, too few for a heap to pay off. A record
 * without a time keeps its source's previous time so it stays next to its neighbours. Ties go to
 * the earlier source, so the order is the same on every run however fast each file is read.
 */
export async function* mergeByTime(sources: RecordSource[]): AsyncGenerator<LogRecord> {
  try {
    const heads = await Promise.all(sources.map((source) => source.next()))
    const lastTimes = sources.map(() => Number.NEGATIVE_INFINITY)
    for (let i = earliest(heads, lastTimes); i !== -1; i = earliest(heads, lastTimes)) {
      const record = heads[i] as LogRecord
      lastTimes[i] = record.time ?? (lastTimes[i] as number)
      yield record
      heads[i] = await (sources[i] as RecordSource).next()
    }
  } finally {
    for (const source of sources) source.close()
  }
}

/** Index of the head with the earliest time, the first source winning ties; -1 when all are done. */
function earliest(heads: (LogRecord | undefined)[], lastTimes: number[]): number {
  let best = -1
  let bestTime = Number.POSITIVE_INFINITY
  heads.forEach((head, i) => {
    const time = head?.time ?? lastTimes[i] ?? Number.NEGATIVE_INFINITY
    if (head !== undefined && (best === -1 || time < bestTime)) {
      best = i
      bestTime = time
    }
  })
  return best
}
