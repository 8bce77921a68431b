import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkJsonDepth } from '../../src/bridge/json-limits.js'
import { ceStringProblem, decodeHeaderValue, encodeHeaderValue } from '../../src/bridge/wire-rules.js'

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

  it('JSON depth counts brackets outside strings only', () => {
    expect(() => checkJsonDepth(Buffer.from('{"a":"[[[[[[[[[[\\"[[[["}'), 2)).not.toThrow()
    expect(() => checkJsonDepth(Buffer.from('[[[]]]'), 3)).not.toThrow()
    expect(() => checkJsonDepth(Buffer.from('[[[[]]]]'), 3)).toThrow(/deeper than 3 levels \(limits.jsonDepth\)/)
  })
})
