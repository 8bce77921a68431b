import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatLogFileName } from '../src/file-names.js'
import { type LogRecord, type SearchOptions, type SearchWarning, searchLogs } from '../src/search.js'

// Files big enough to be read in many chunks, queued and paused: the byte-level search must find
// what parsing every line finds, with the same line numbers, in the same order.

const T0 = Date.UTC(2026, 10, 22, 0, 0, 0)
const LINES = 40_000
const TRACE = '0af7651916cd43dd8448eb211c80319c'
let root: string

interface Line {
  text: string
  record: Record<string, unknown>
  service: string
  file: string
  lineNumber: number
}
const all: Line[] = []

function record(service: string, i: number): Record<string, unknown> {
  const level = [30, 30, 30, 20, 40, 50][i % 6] as number
  const base: Record<string, unknown> = { level, time: T0 + i * 100, 'service.name': service, i }
  if (i % 997 === 0) base.trace_id = TRACE
  base.msg = i % 1231 === 0 ? 'said "needle" twice\\ here' : i % 701 === 0 ? 'plain needle' : `request ${i}`
  return base
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'backplane-logs-bytes-'))
  for (const [k, service] of ['api', 'worker'].entries()) {
    // Three files per service: two gzipped, the newest plain; each with one line that is not JSON.
    const perFile = LINES / 3
    for (let f = 0; f < 3; f++) {
      const from = Math.floor(f * perFile)
      const to = Math.floor((f + 1) * perFile)
      const name = formatLogFileName(service, T0 + (from * 2 + k) * 100, f + 1)
      const path = join(root, f < 2 ? `${name}.gz` : name)
      const lines: string[] = []
      for (let i = from; i < to; i++) {
        const rec = record(service, i * 2 + k)
        const text = JSON.stringify(rec)
        lines.push(text)
        all.push({ text, record: rec, service, file: path, lineNumber: lines.length })
        if (i === from + 10) lines.push('garbage that is not json')
      }
      const content = `${lines.join('\n')}\n`
      await writeFile(path, f < 2 ? gzipSync(content) : content)
    }
  }
  all.sort((a, b) => (a.record.time as number) - (b.record.time as number))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function search(options: Omit<SearchOptions, 'dirs' | 'onWarning'>) {
  const warnings: SearchWarning[] = []
  const records: LogRecord[] = []
  for await (const r of searchLogs({ dirs: [root], ...options, onWarning: (w) => warnings.push(w) })) records.push(r)
  return { records, warnings }
}

const view = (r: LogRecord) => [r.raw, r.file, r.lineNumber]
const expected = (keep: (line: Line) => boolean) => all.filter(keep).map((l) => [l.text, l.file, l.lineNumber])

describe('searchLogs on files read in many chunks', () => {
  it('finds a trace with the right files and line numbers', async () => {
    const { records } = await search({ traceId: TRACE })
    expect(records.map(view)).toEqual(expected((l) => l.record.trace_id === TRACE))
    expect(records.length).toBeGreaterThan(60)
  })

  it('finds text in the raw line and in an escaped msg', async () => {
    const { records } = await search({ grep: 'said "needle" twice\\' })
    expect(records.map(view)).toEqual(expected((l) => String(l.record.msg).includes('said "needle" twice\\')))
    expect(records.length).toBeGreaterThan(0)
    const plain = await search({ grep: 'needle' })
    expect(plain.records.map(view)).toEqual(expected((l) => String(l.record.msg).includes('needle')))
  })

  it('filters by level and time as parsing every line does', async () => {
    const since = T0 + 20_000 * 100
    const until = T0 + 50_000 * 100
    const { records } = await search({ level: 'warn', since, until })
    const keep = (l: Line) =>
      (l.record.level as number) >= 40 && (l.record.time as number) >= since && (l.record.time as number) < until
    expect(records.map(view)).toEqual(expected(keep))
  })

  it('returns every record of every file in time order, and warns about the lines that are not JSON', async () => {
    const { records, warnings } = await search({})
    expect(records.length).toBe(all.length)
    expect(records.map(view)).toEqual(expected(() => true))
    expect(warnings.map((w) => w.message).sort()).toEqual(
      [...new Set(all.map((l) => l.file))].sort().map((file) => `${file}: skipped 1 line(s) that are not JSON`),
    )
  })

  it('stops at the limit and when the consumer breaks out', async () => {
    expect((await search({ level: 'error', limit: 5 })).records.map(view)).toEqual(
      expected((l) => l.record.level === 50).slice(0, 5),
    )
    let seen = 0
    for await (const _ of searchLogs({ dirs: [root] })) if (++seen === 3000) break
    expect(seen).toBe(3000)
  })

  it('does not open the newest file for a time after its last write', async () => {
    // Runs last: the newest files get lines that are not JSON, which would be reported if read.
    const newest = [...new Set(all.map((l) => l.file))].filter((f) => !f.endsWith('.gz'))
    const lastWrite = new Date(T0 + LINES * 2 * 100)
    // A backslash gets a line past every byte-level test: it is parsed, and reported, whenever read.
    const broken = 'not json \\ at all\n'
    for (const file of newest) {
      await writeFile(file, broken + broken)
      await utimes(file, lastWrite, lastWrite)
    }
    const after = await search({ since: lastWrite.getTime() + 60_000 })
    expect(after).toEqual({ records: [], warnings: [] })
    const before = await search({ since: lastWrite.getTime() - 60_000 })
    expect(before.warnings.map((w) => w.path).sort()).toEqual(newest.sort())
  })
})
