import { createReadStream, createWriteStream } from 'node:fs'
import { rename, unlink } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { LogFileOnDisk } from './file-names.js'

/** Gzips `path` to `path.gz` through a temporary file, so a crash never leaves a truncated `.gz`. */
export async function gzipFile(path: string, level: number, mode?: number): Promise<{ path: string; bytes: number }> {
  const target = `${path}.gz`
  const temporary = `${target}.tmp`
  const out = createWriteStream(temporary, mode === undefined ? {} : { mode })
  let bytes = 0
  out.on('finish', () => {
    bytes = out.bytesWritten
  })
  try {
    await pipeline(createReadStream(path), createGzip({ level }), out)
    await rename(temporary, target)
  } catch (error) {
    await unlink(temporary).catch(() => {})
    throw error
  }
  await unlink(path)
  return { path: target, bytes }
}

export interface RetentionPolicy {
  maxFiles?: number | undefined
  maxSize?: number | undefined
  maxAge?: number | undefined
}

export type RemovalReason = 'maxFiles' | 'maxSize' | 'maxAge'

/**
 * The files to delete so that what remains meets `policy`. Counts every file of `name` on disk,
 * from this run or earlier ones; never picks `current` (the file being written). A file's age is
 * the time its last line can have been written: when the next file was opened.
 */
export function selectForRemoval(
  files: readonly LogFileOnDisk[],
  policy: RetentionPolicy,
  now: number,
  current: string | undefined,
): { file: LogFileOnDisk; reason: RemovalReason }[] {
  const removed: { file: LogFileOnDisk; reason: RemovalReason }[] = []
  const kept = [...files]
  const removable = (f: LogFileOnDisk) => f.path !== current
  const take = (index: number, reason: RemovalReason) => {
    removed.push({ file: kept[index] as LogFileOnDisk, reason })
    kept.splice(index, 1)
  }
  if (policy.maxAge !== undefined) {
    const cutoff = now - policy.maxAge
    for (let i = 0; i < kept.length; ) {
      const file = kept[i] as LogFileOnDisk
      const closedAt = kept[i + 1]?.startedAt ?? now
      if (removable(file) && closedAt < cutoff) take(i, 'maxAge')
      else i++
    }
  }
  if (policy.maxFiles !== undefined) {
    for (let i = 0; kept.length > policy.maxFiles && i < kept.length; ) {
      if (removable(kept[i] as LogFileOnDisk)) take(i, 'maxFiles')
      else i++
    }
  }
  if (policy.maxSize !== undefined) {
    let total = kept.reduce((sum, f) => sum + f.size, 0)
    for (let i = 0; total > policy.maxSize && i < kept.length; ) {
      const file = kept[i] as LogFileOnDisk
      if (removable(file)) {
        total -= file.size
        take(i, 'maxSize')
      } else i++
    }
  }
  return removed
}
