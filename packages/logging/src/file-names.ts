import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Log file names: `<name>.<UTC start time>.<sequence>.log`, plus `.gz` once compressed, e.g.
 * `orders.2026-11-22T00-00-00Z.000042.log.gz`. The time sorts the names in `ls`; the sequence
 * only ever grows (the next one is found on disk at start), so a restart never reuses a number
 * and ties within one second still sort. Colons are avoided so names are valid on every OS.
 */
export interface LogFileName {
  /** The file's base name without directory. */
  file: string
  /** Service or stream name the file belongs to. */
  name: string
  /** When the file was opened (ms since epoch, from its name, never from mtime). */
  startedAt: number
  sequence: number
  compressed: boolean
}

const SEQUENCE_DIGITS = 6
const NAME_PATTERN = /^(.+)\.(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z\.(\d+)\.log(\.gz)?$/

export function formatLogFileName(name: string, startedAt: number, sequence: number): string {
  const iso = new Date(startedAt).toISOString() // 2026-11-22T00:00:00.000Z
  const stamp = `${iso.slice(0, 10)}T${iso.slice(11, 19).replaceAll(':', '-')}Z`
  return `${name}.${stamp}.${String(sequence).padStart(SEQUENCE_DIGITS, '0')}.log`
}

export function parseLogFileName(file: string): LogFileName | undefined {
  const m = NAME_PATTERN.exec(file)
  if (!m) return undefined
  const [, name, y, mo, d, h, mi, s, seq, gz] = m as unknown as string[]
  const startedAt = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  return { file, name: name as string, startedAt, sequence: Number(seq), compressed: gz !== undefined }
}

/** Orders files oldest first: by sequence, which only grows, then by start time. */
export function compareLogFiles(a: LogFileName, b: LogFileName): number {
  return a.sequence - b.sequence || a.startedAt - b.startedAt
}

export interface LogFileOnDisk extends LogFileName {
  path: string
  size: number
  /** Last modification (ms since epoch): the newest file's records are not later than this. */
  modifiedAt?: number
}

/**
 * The log files of `name` (or of every name when omitted) in `dir`, oldest first. A file whose
 * compression was cut short by a crash can exist as both `x.log` and `x.log.gz` for a moment; the
 * `.gz` appears only once complete (renamed into place), so it is the one listed.
 */
export async function listLogFiles(dir: string, name?: string): Promise<LogFileOnDisk[]> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const files: LogFileOnDisk[] = []
  for (const file of entries) {
    const parsed = parseLogFileName(file)
    if (!parsed || (name !== undefined && parsed.name !== name)) continue
    const path = join(dir, file)
    try {
      const info = await stat(path)
      if (info.isFile()) files.push({ ...parsed, path, size: info.size, modifiedAt: info.mtimeMs })
    } catch (error) {
      // Removed between readdir and stat (retention of another process, or compression): skip.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
  return withoutCompressedTwins(files).sort(compareLogFiles)
}

function withoutCompressedTwins(files: LogFileOnDisk[]): LogFileOnDisk[] {
  const compressed = new Set(files.filter((f) => f.compressed).map((f) => f.path.slice(0, -3)))
  return files.filter((f) => f.compressed || !compressed.has(f.path))
}
