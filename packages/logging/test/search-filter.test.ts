import { describe, expect, it } from 'vitest'
import { lineFilterFor, mayHaveLevel, mayHaveTime } from '../src/search-filter.js'
import { levelNumber } from '../src/search-levels.js'
import type { Query } from '../src/search-types.js'

const line = (text: string) => Buffer.from(text)

describe('mayHaveLevel', () => {
  it.each([
    ['{"level":30,"msg":"x"}', 40, false],
    ['{"level":40,"msg":"x"}', 40, true],
    ['{"level":50}', 40, true],
    ['{"level" : 45 }', 40, true],
    ['{"level" : 35 }', 40, false],
    ['{"msg":"no level at all"}', 40, false],
    ['{"level":"warn"}', 40, true], // labels are left to the full check
    ['{"level":40.5}', 40, true],
    ['{"level":4e1}', 40, true],
    ['{"level":-1}', 40, true],
    ['{"req":{"level":50},"level":30}', 40, true], // the nested one could be the top-level one for all it knows
    ['{"req":{"level":10},"level":30}', 40, false],
    ['{"tag":"level","level":30}', 40, false], // "level" as a value is not a key
    ['{"level":30,"msg":"a \\"level\\":50"}', 40, true], // escapes: left to the full check
    ['{"\\u006cevel":50}', 40, true],
  ])('%s at minimum %i: %s', (text, min, expected) => {
    expect(mayHaveLevel(line(text), min)).toBe(expected)
  })
})

describe('mayHaveTime', () => {
  it.each([
    ['{"time":1000}', true],
    ['{"time":1999}', true],
    ['{"time":2000}', false],
    ['{"time":999}', false],
    ['{"responseTime":1500,"time":3000}', false],
    ['{"time":"2026-11-22T00:00:00Z"}', true],
    ['{"msg":"no time"}', false],
    ['{"time":12345678901234567890}', true],
  ])('%s in [1000, 2000): %s', (text, expected) => {
    expect(mayHaveTime(line(text), 1000, 2000)).toBe(expected)
  })
})

function query(overrides: Partial<Query>): Query {
  return {
    dirs: ['.'],
    traceId: undefined,
    minLevel: undefined,
    since: Number.NEGATIVE_INFINITY,
    until: Number.POSITIVE_INFINITY,
    services: undefined,
    grepText: undefined,
    grep: undefined,
    limit: Number.POSITIVE_INFINITY,
    warn: () => {},
    ...overrides,
  }
}

describe('lineFilterFor', () => {
  it('looks for the trace id, or the grep text and backslashes, in the raw bytes', () => {
    expect(lineFilterFor(query({ traceId: 'ab' })).needles.map(String)).toEqual(['ab'])
    expect(lineFilterFor(query({ grepText: 'say "hi"' })).needles.map(String)).toEqual(['say "hi"', '\\'])
    expect(lineFilterFor(query({})).needles).toEqual([])
  })

  it('never rules out a line whose record passes the level and time checks', () => {
    const levels = [10, 30, 40, 60, '"warn"', '"info"', '"50"', 45.5, null]
    const times = [500, 1000, 1500, 2000, '"1970-01-01T00:00:01.500Z"', '"nope"', null]
    const accepts = lineFilterFor(query({ minLevel: 40, since: 1000, until: 2000 })).accepts
    for (const level of levels) {
      for (const time of times) {
        for (const nested of ['', '"req":{"level":60,"time":1500},']) {
          const fields = [level === null ? '' : `"level":${level},`, time === null ? '' : `"time":${time},`]
          const text = `{${nested}${fields.join('')}"msg":"m"}`
          const record = JSON.parse(text) as { level?: unknown; time?: unknown }
          const lv =
            typeof record.level === 'number' || typeof record.level === 'string' ? levelNumber(record.level) : undefined
          const ms =
            typeof record.time === 'number'
              ? record.time
              : typeof record.time === 'string'
                ? Date.parse(record.time)
                : Number.NaN
          const passes = lv !== undefined && lv >= 40 && ms >= 1000 && ms < 2000
          if (passes) expect(accepts?.(line(text)), text).toBe(true)
        }
      }
    }
  })
})
