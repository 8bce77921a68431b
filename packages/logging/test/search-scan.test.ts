import { describe, expect, it } from 'vitest'
import { createLineScanner, type LineFilter } from '../src/search-scan.js'

/** Feeds `input` to a scanner in pieces cut at `cuts` and returns what it handed on. */
function scan(input: string, filter: LineFilter, cuts: number[] = []): { lines: [string, number][]; total: number } {
  const lines: [string, number][] = []
  const scanner = createLineScanner(filter, (raw, lineNumber) => lines.push([raw, lineNumber]))
  const bytes = Buffer.from(input)
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    scanner.push(bytes.subarray(from, cut))
    from = cut
  }
  scanner.end()
  return { lines, total: scanner.lines }
}

/** What readline would produce for `\n` and `\r\n` breaks, numbered from 1. */
function expectedLines(input: string, keep: (line: string) => boolean): [string, number][] {
  const parts = input.split('\n')
  if (parts.at(-1) === '') parts.pop()
  return parts
    .map((line, i): [string, number] => [line.endsWith('\r') ? line.slice(0, -1) : line, i + 1])
    .filter(([line]) => keep(line))
}

const INPUT = [
  '{"level":30,"msg":"first"}',
  '{"level":40,"msg":"needle here","n":1}',
  '',
  'not json with needle',
  '{"level":30,"msg":"crlf line"}\r',
  '{"level":50,"msg":"é ü and a needle after multibyte"}',
  '{"level":30,"msg":"last, no line break"}',
].join('\n')

describe('createLineScanner', () => {
  it('hands on every line with its number when there is no needle', () => {
    const { lines, total } = scan(INPUT, { needles: [] })
    expect(lines).toEqual(expectedLines(INPUT, () => true))
    expect(total).toBe(7)
  })

  it('hands on only the lines holding a needle, numbered as in the whole input', () => {
    const { lines, total } = scan(INPUT, { needles: [Buffer.from('needle')] })
    expect(lines).toEqual(expectedLines(INPUT, (line) => line.includes('needle')))
    expect(lines.map(([, n]) => n)).toEqual([2, 4, 6])
    expect(total).toBe(7)
  })

  it('gives the same result wherever the chunks are cut, needles and multibyte characters included', () => {
    const bytes = Buffer.byteLength(INPUT)
    const needles = [Buffer.from('needle'), Buffer.from('crlf')]
    const want = expectedLines(INPUT, (line) => line.includes('needle') || line.includes('crlf'))
    for (let a = 0; a <= bytes; a++) {
      for (const b of [a, Math.min(bytes, a + 1), Math.min(bytes, a + 7), bytes]) {
        expect(scan(INPUT, { needles }, a === b ? [a] : [a, b]).lines).toEqual(want)
      }
    }
  })

  it('asks `accepts` about candidate lines only, without their line break', () => {
    const seen: string[] = []
    const accepts = (line: Buffer) => {
      seen.push(line.toString())
      return line.includes('"level":40')
    }
    const { lines } = scan(INPUT, { needles: [Buffer.from('needle')], accepts }, [30, 31, 90])
    expect(lines).toEqual([['{"level":40,"msg":"needle here","n":1}', 2]])
    expect(seen).toEqual(expectedLines(INPUT, (line) => line.includes('needle')).map(([line]) => line))
  })

  it('joins a line spread over many chunks', () => {
    const long = `{"msg":"${'x'.repeat(5000)}needle"}`
    const input = `a\n${long}\nb\n`
    const cuts = Array.from({ length: 50 }, (_, i) => 3 + i * 100)
    expect(scan(input, { needles: [Buffer.from('needle')] }, cuts).lines).toEqual([[long, 2]])
  })

  it('counts an input that ends with a line break as it is, without an empty last line', () => {
    expect(scan('a\nb\n', { needles: [] }).total).toBe(2)
    expect(scan('', { needles: [] })).toEqual({ lines: [], total: 0 })
  })
})
