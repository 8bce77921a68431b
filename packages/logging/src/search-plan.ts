import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type LogFileOnDisk, listLogFiles, parseLogFileName } from './file-names.js'
import { errorMessage } from './search-read.js'
import type { PlannedFile, Query } from './search-types.js'

/**
 * A record may be stamped shortly before the file holding it was opened (asynchronous writes),
 * and names keep only whole seconds: widen each file's time span by this much before skipping it.
 */
const FILE_SPAN_SLACK_MS = 5_000

/**
 * Lists each directory's files as sources: each source's files are read one after the other.
 * Files whose time span cannot overlap [since, until) are left out: they are never opened.
 */
export async function planSources(query: Query): Promise<PlannedFile[][]> {
  const perDir = await Promise.all(query.dirs.map((dir) => planDir(dir, query)))
  return perDir.flat().filter((files) => files.length > 0)
}

async function planDir(dir: string, query: Query): Promise<PlannedFile[][]> {
  try {
    const [named, other] = await Promise.all([listLogFiles(dir), listOtherLogFiles(dir)])
    const others = other.filter((file) => overlaps(file, query)).map((file) => [file])
    return [...planNamedFiles(named, query), ...others]
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : errorMessage(error)
    query.warn({ path: dir, message: `cannot list ${dir}: ${reason}`, cause: error })
    return []
  }
}

/** One source per service: its files already sort oldest first, and each ends where the next begins. */
function planNamedFiles(files: LogFileOnDisk[], query: Query): PlannedFile[][] {
  const byService = new Map<string, LogFileOnDisk[]>()
  for (const file of files) {
    if (query.services && !query.services.has(file.name)) continue
    const own = byService.get(file.name)
    if (own) own.push(file)
    else byService.set(file.name, [file])
  }
  return [...byService.keys()].sort().map((service) => {
    const own = byService.get(service) ?? []
    return own.map((file, i) => planNamedFile(file, own[i + 1])).filter((file) => overlaps(file, query))
  })
}

/**
 * A rotated file holds the records from its start until the next file of its service starts; the
 * newest one those until its last write (a query for a later time need not open it).
 */
function planNamedFile(file: LogFileOnDisk, next: LogFileOnDisk | undefined): PlannedFile {
  const end = next?.startedAt ?? Math.max(file.startedAt, file.modifiedAt ?? Number.POSITIVE_INFINITY)
  return {
    path: file.path,
    compressed: file.compressed,
    service: file.name,
    from: file.startedAt - FILE_SPAN_SLACK_MS,
    to: end + FILE_SPAN_SLACK_MS,
  }
}

/** `*.log` / `*.log.gz` files not named by the rotation scheme: the last write bounds their records. */
async function listOtherLogFiles(dir: string): Promise<PlannedFile[]> {
  const names = (await readdir(dir)).filter((name) => /\.log(\.gz)?$/.test(name) && !parseLogFileName(name))
  const files: PlannedFile[] = []
  for (const name of names) {
    const path = join(dir, name)
    const info = await stat(path).catch(() => undefined) // gone since readdir: nothing to read
    if (!info?.isFile()) continue
    const to = info.mtimeMs + FILE_SPAN_SLACK_MS
    files.push({ path, compressed: name.endsWith('.gz'), service: undefined, from: Number.NEGATIVE_INFINITY, to })
  }
  return files.sort((a, b) => a.to - b.to)
}

function overlaps(file: PlannedFile, query: Query): boolean {
  return file.from < query.until && file.to > query.since
}
