import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DURATION_EXPECTED, durationSchema, parseDuration } from '../src/index.js'
import { DURATION_TABLE, INVALID_DURATIONS } from './duration-table.js'

describe('parseDuration', () => {
  it.each(DURATION_TABLE)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms)
  })

  it.each(INVALID_DURATIONS)('%j is not a duration', (input) => {
    expect(parseDuration(input)).toBeUndefined()
  })

  it('never throws and never returns a negative or non-finite number, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.double(), fc.anything()), (input) => {
        const ms = parseDuration(input)
        expect(ms === undefined || (Number.isFinite(ms) && ms >= 0)).toBe(true)
      }),
    )
  })

  it('adds the parts of a compound duration', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.nat(59), fc.nat(59), (h, m, s) => {
        expect(parseDuration(`${h}h${m}m${s}s`)).toBe(((h * 60 + m) * 60 + s) * 1000)
      }),
    )
  })
})

describe('durationSchema', () => {
  it('outputs whole milliseconds', () => {
    expect(durationSchema().parse('1.5s')).toBe(1500)
    expect(durationSchema().parse(2.4)).toBe(2)
    expect(durationSchema({ integer: false }).parse(2.4)).toBe(2.4)
  })

  it('says what it expected, with the value it got', () => {
    const result = durationSchema().safeParse('soon')
    expect(result.success).toBe(false)
    expect(result.error?.issues[0]?.message).toBe(`expected ${DURATION_EXPECTED}, got "soon"`)
    expect(durationSchema().safeParse(true).error?.issues[0]?.message).toBe(`expected ${DURATION_EXPECTED}`)
  })

  it('enforces bounds', () => {
    const schema = durationSchema({ min: 1, max: 60_000 })
    expect(schema.safeParse('0s').error?.issues[0]?.message).toBe(
      'expected a duration between 1 ms and 60000 ms, got "0s"',
    )
    expect(schema.safeParse('2m').success).toBe(false)
    expect(schema.parse('1m')).toBe(60_000)
  })
})
