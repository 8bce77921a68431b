import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll } from 'vitest'
import { compareLogFiles, parseLogFileName } from '../../src/file-names.js'

const made: string[] = []
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

/** A fresh directory, removed after the test file. */
export function tempDir(prefix = 'backplane-logging-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

export interface FileContent {
  file: string
  bytes: number
  lines: string[]
}

/** Every log file of `name` in `dir`, oldest first, decompressed, split into lines. */
export function readLogFiles(dir: string, name?: string): FileContent[] {
  const parsed = readdirSync(dir)
    .map((file) => parseLogFileName(file))
    .filter((p): p is NonNullable<typeof p> => p !== undefined && (name === undefined || p.name === name))
    .sort(compareLogFiles)
  return parsed.map(({ file, compressed }) => {
    const raw = readFileSync(join(dir, file))
    const text = (compressed ? gunzipSync(raw) : raw).toString('utf8')
    return { file, bytes: Buffer.byteLength(text), lines: text === '' ? [] : text.replace(/\n$/, '').split('\n') }
  })
}

export function allRecords(dir: string, name?: string): Record<string, unknown>[] {
  return readLogFiles(dir, name).flatMap((f) => f.lines.map((line) => JSON.parse(line) as Record<string, unknown>))
}
