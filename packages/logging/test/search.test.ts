import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { collectTrace, type LogRecord, type SearchOptions, type SearchWarning, searchLogs } from '../src/search.js'
import { SearchError } from '../src/search-error.js'
import { ALL_IDS, createFixture, type Fixture, RECORDS, type RecordId, T0, TRACE_ID } from './search-fixtures.js'

let fx: Fixture

beforeAll(async () => {
  fx = await createFixture()
})

afterAll(async () => {
  await rm(fx.root, { recursive: true, force: true })
})

async function search(options: Omit<SearchOptions, 'onWarning'>) {
  const warnings: SearchWarning[] = []
  const records: LogRecord[] = []
  for await (const record of searchLogs({ ...options, onWarning: (w) => warnings.push(w) })) records.push(record)
  return { ids: records.map((r) => r.record.id), records, warnings }
}

const TRACE_IDS: RecordId[] = ['o4', 'p3', 'x1', 'o6', 'p4']

describe('searchLogs', () => {
  it('returns every record of every file in time order, skipping partial last lines silently', async () => {
    const { ids, records, warnings } = await search({ dirs: [fx.a, fx.b] })
    expect(ids).toEqual(ALL_IDS)
    expect(warnings).toEqual([])
    expect(records.map((r) => r.raw)).toEqual(ALL_IDS.map((id) => RECORDS[id].text))
  })

  it('merges one trace across services and directories by time', async () => {
    const { ids, records } = await search({ dirs: [fx.b, fx.a], traceId: TRACE_ID.toUpperCase() })
    expect(ids).toEqual(TRACE_IDS)
    expect(records.map((r) => r.service)).toEqual(['orders', 'payments', 'gateway', 'orders', 'payments'])
  })

  it('tells where each record came from', async () => {
    const { records } = await search({ dirs: [fx.a], traceId: TRACE_ID, limit: 2 })
    expect(records.map((r) => [r.file, r.lineNumber])).toEqual([
      [join(fx.a, 'orders.2026-11-22T22-10-00Z.000002.log.gz'), 2],
      [join(fx.a, 'app.log'), 2],
    ])
    expect(records[0]).toMatchObject({ time: T0 + 16 * 60_000 + 100, level: 30, service: 'orders' })
  })

  it('keeps records at or above a minimum level given as a label or a number, label records included', async () => {
    const expected: RecordId[] = ['x2', 'p2', 'o3', 'p4', 'o7', 'o8']
    expect((await search({ dirs: [fx.a, fx.b], level: 'warn' })).ids).toEqual(expected)
    expect((await search({ dirs: [fx.a, fx.b], level: 40 })).ids).toEqual(expected)
    expect((await search({ dirs: [fx.a, fx.b], level: 'FATAL' })).ids).toEqual(['o8'])
  })

  it('treats since as inclusive and until as exclusive', async () => {
    const since = new Date(T0 + 16 * 60_000 + 200) // p3 exactly
    const until = T0 + 16 * 60_000 + 400 // p4 exactly
    expect((await search({ dirs: [fx.a, fx.b], since, until })).ids).toEqual(['p3', 'x1', 'o6'])
  })

  it('compares ISO string times too', async () => {
    const at = T0 + 9 * 60_000 // p2 has an ISO time
    expect((await search({ dirs: [fx.b], since: at, until: at + 1 })).ids).toEqual(['p2'])
  })

  it('filters by service, by file name and by service.name in other files', async () => {
    expect((await search({ dirs: [fx.a, fx.b], service: 'payments' })).ids).toEqual(['p1', 'p2', 'p3', 'p4', 'p5'])
    expect((await search({ dirs: [fx.a, fx.b], service: ['gateway', 'orders'] })).ids).toEqual(
      ALL_IDS.filter((id) => id.startsWith('o') || id.startsWith('x')),
    )
  })

  it('greps msg and the raw line, as text or RegExp', async () => {
    expect((await search({ dirs: [fx.a, fx.b], grep: 'timeout' })).ids).toEqual(['o7'])
    expect((await search({ dirs: [fx.a, fx.b], grep: '"sku":"s-1"' })).ids).toEqual(['o3'])
    // ^ and $ only match against msg, not against the raw JSON line; the g flag must not skip lines.
    expect((await search({ dirs: [fx.a, fx.b], grep: /^order (placed|confirmed)$/g })).ids).toEqual(['o4', 'o6'])
  })

  it('combines filters and stops at the limit', async () => {
    expect((await search({ dirs: [fx.a, fx.b], level: 'info', service: 'orders', limit: 3 })).ids).toEqual([
      'o1',
      'o3',
      'o4',
    ])
  })

  it('stops early when the consumer breaks out', async () => {
    const ids: unknown[] = []
    for await (const record of searchLogs({ dirs: [fx.a, fx.b] })) {
      ids.push(record.record.id)
      if (ids.length === 2) break
    }
    expect(ids).toEqual(['o1', 'o2'])
  })

  it('warns about a corrupt gzip file and still returns the other files', async () => {
    const { ids, warnings } = await search({ dirs: [fx.corrupt, fx.b], service: ['orders', 'payments'] })
    expect(ids).toEqual(['p1', 'p2', 'o3', 'o4', 'p3', 'p4', 'p5'])
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.path).toBe(fx.corruptFile)
    expect(warnings[0]?.message).toContain(`cannot read ${fx.corruptFile}`)
  })

  it('does not open files whose time span is outside since/until', async () => {
    const { ids, warnings } = await search({ dirs: [fx.corrupt], since: T0 + 11 * 60_000 })
    expect(ids).toEqual(['o4'])
    expect(warnings).toEqual([]) // the corrupt file covers T0 to T0+10m, so it was never read
  })

  it('warns about a missing directory and searches the others', async () => {
    const missing = join(fx.root, 'nope')
    const { ids, warnings } = await search({ dirs: [missing, fx.b], level: 'error' })
    expect(ids).toEqual(['p4'])
    expect(warnings.map((w) => w.message)).toEqual([`cannot list ${missing}: no such directory`])
  })

  it('returns nothing, without error, when nothing matches', async () => {
    expect((await search({ dirs: [fx.a, fx.b], grep: 'no such text anywhere' })).ids).toEqual([])
  })
})

describe('collectTrace', () => {
  it('collects one trace across services in time order', async () => {
    const records = await collectTrace(TRACE_ID, [fx.a, fx.b])
    expect(records.map((r) => r.record.id)).toEqual(TRACE_IDS)
    expect(records.map((r) => r.record.msg)).toEqual([
      'order placed',
      'payment authorized',
      'request done',
      'order confirmed',
      'capture failed',
    ])
  })
})

describe('option validation', () => {
  function errorOf(options: unknown): SearchError {
    try {
      searchLogs(options as SearchOptions)
    } catch (error) {
      if (SearchError.is(error)) return error
      throw error
    }
    throw new Error('expected a SearchError')
  }

  it('throws a SearchError at call time that says what was wrong and what was expected', () => {
    const error = errorOf({ dirs: [] })
    expect(error).toBeInstanceOf(SearchError)
    expect(error.code).toBe('LOGGING_SEARCH_INVALID')
    expect(error.message).toBe('dirs []: expected at least one directory')
  })

  it.each([
    [
      { dirs: ['x'], level: 'loud' },
      'level "loud": expected a level: trace, debug, info, warn, error, fatal or a number',
    ],
    [{ dirs: ['x'], traceId: 'abc' }, 'traceId "abc": expected a trace id of 32 hexadecimal characters'],
    [{ dirs: ['x'], since: new Date('nope') }, 'since Invalid Date: expected a Date or epoch milliseconds'],
    [{ dirs: ['x'], since: 2000, until: 1000 }, 'until 1000: expected a time later than since'],
    [{ dirs: ['x'], limit: 0 }, 'limit 0: expected a positive whole number'],
    [{ dirs: ['x'], service: [] }, 'service []: expected a service name or a non-empty list of them'],
  ])('rejects %j', (options, message) => {
    expect(errorOf(options).message).toBe(message)
  })

  it('names unknown options and lists the known ones', () => {
    const error = errorOf({ dirs: ['x'], lvl: 'warn' })
    expect(error.issues.map((issue) => issue.option)).toEqual(['lvl'])
    expect(error.message).toContain('lvl: expected a known option (dirs, traceId, level,')
  })
})
