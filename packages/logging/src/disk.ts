import { accessSync, appendFileSync, constants, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { LoggingError } from './errors.js'
import { parseLogFileName } from './file-names.js'

/** A chunk handed to the file stream: what rolling-file.ts reads back when the disk fails. */
export interface WrittenChunk {
  chunk: Buffer
  lines: number
  /** The file it went to, and where in it it starts. */
  file: string | undefined
  offset: number
}

/** The part of `written` its file lacks, from the start of the first line not wholly in it. */
export function missingTail(written: WrittenChunk): Buffer | undefined {
  if (written.file === undefined) return written.chunk
  const have = sizeOf(written.file) - written.offset
  if (have >= written.chunk.length) return undefined
  const start = have <= 0 ? 0 : written.chunk.lastIndexOf(10, have - 1) + 1
  return written.chunk.subarray(start)
}

export function sizeOf(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** Creates the directory and proves it is writable now, so misconfiguration fails at start. */
export function prepareDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK | constants.X_OK)
    const probe = join(dir, `.backplane-write-test-${process.pid}`)
    appendFileSync(probe, '')
    unlinkSync(probe)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new LoggingError(
      'LOGGING_DIR_UNWRITABLE',
      `cannot write log files in ${dir} (${code}): expected a directory this process (uid ${process.getuid?.() ?? '?'}) can create files in`,
      { cause: error },
    )
  }
}

/** One more than the highest sequence of `name` on disk, compressed or not, so numbers never repeat. */
export function nextSequence(dir: string, name: string): number {
  let max = 0
  for (const entry of readdirSync(dir)) {
    const parsed = parseLogFileName(entry.endsWith('.tmp') ? entry.slice(0, -4) : entry)
    if (parsed && parsed.name === name && parsed.sequence > max) max = parsed.sequence
  }
  return max + 1
}
