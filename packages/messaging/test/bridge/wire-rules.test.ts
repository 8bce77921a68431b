import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkJsonDepth } from '../../src/bridge/json-limits.js'
import { ceStringProblem, checkTime, decodeHeaderValue, encodeHeaderValue } from '../../src/bridge/wire-rules.js'
import { publishOptionsSchema } from '../../src/options.js'

const wellFormed = fc.string({ unit: 'binary', maxLength: 40 })

describe('wire rules', () => {
  it('percent-encoding (CloudEvents HTTP binding) gives printable ASCII without " or bare %, and decodes back', () => {
    fc.assert(
      fc.property(wellFormed, (text) => {
        const encoded = encodeHeaderValue(text)
        expect(encoded).toMatch(/^(?:[\x21\x23\x24\x26-\x7e]|%[0-9A-F]{2})*$/)
        expect(decodeHeaderValue('x', encoded)).toBe(text)
        expect(decodeURIComponent(encoded)).toBe(text)
      }),
      { numRuns: 500 },
    )
    expect(encodeHeaderValue('Łódź 50% "q"')).toBe('%C5%81%C3%B3d%C5%BA%2050%25%20%22q%22')
  })

  it('a ce-* request header with raw non-ASCII or percent-encoding that is not UTF-8 is refused', () => {
    expect(() => decodeHeaderValue('header ce-x', 'Å\u0081')).toThrow(
      /header ce-x holds a byte outside printable ASCII/,
    )
    expect(() => decodeHeaderValue('header ce-x', '%C5')).toThrow(/not UTF-8/)
    expect(decodeHeaderValue('header ce-x', '100% sure')).toBe('100% sure')
  })

  it('CloudEvents strings: control characters, lone surrogates, noncharacters and edge spaces are named', () => {
    expect(ceStringProblem('Łódź 🚀')).toBeUndefined()
    expect(ceStringProblem('a\r\nb')).toBe('holds the control character U+000D at index 1')
    expect(ceStringProblem('a\u0085')).toBe('holds the control character U+0085 at index 1')
    expect(ceStringProblem('\ud800x')).toBe('holds the lone surrogate U+D800 at index 0')
    expect(ceStringProblem('x\ufffe')).toBe('holds the noncharacter U+FFFE at index 1')
    expect(ceStringProblem(' x')).toBe('starts or ends with white space')
    expect(ceStringProblem('')).toBe('is empty')
  })

  it('CloudEvents time: RFC 3339 timestamps pass as they are, anything else is named; the core takes what passes', () => {
    for (const ok of ['2026-12-01T09:30:00Z', '2026-12-01T10:30:00.25+01:00', '1999-12-31T23:59:59.123456789-07:00']) {
      expect(checkTime('time', ok)).toBe(ok)
    }
    expect(() => checkTime('header ce-time', '2026-12-01 09:30:00Z')).toThrow(
      'header ce-time has the value "2026-12-01 09:30:00Z": expected an RFC 3339 timestamp',
    )
    expect(() => checkTime('time', '')).toThrow(/^time is empty: expected an RFC 3339 timestamp/)
    expect(() => checkTime('time', `2026-12-01T09:30:00.${'1'.repeat(2000)}Z`)).toThrow(/longer than 1024 characters/)
    const candidate = fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.stringMatching(/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?([Zz]|[+-]\d{2}:?\d{2})?$/),
      wellFormed,
    )
    fc.assert(
      fc.property(candidate, (time) => {
        let accepted = true
        try {
          checkTime('time', time)
        } catch {
          accepted = false
        }
        expect(publishOptionsSchema.safeParse({ time }).success).toBe(accepted)
      }),
      { numRuns: 500 },
    )
  })

  it('JSON depth counts brackets outside strings only', () => {
    expect(() => checkJsonDepth(Buffer.from('{"a":"[[[[[[[[[[\\"[[[["}'), 2)).not.toThrow()
    expect(() => checkJsonDepth(Buffer.from('[[[]]]'), 3)).not.toThrow()
    expect(() => checkJsonDepth(Buffer.from('[[[[]]]]'), 3)).toThrow(/deeper than 3 levels \(limits.jsonDepth\)/)
  })
})
