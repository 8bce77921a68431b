import type { LineFilter } from './search-scan.js'
import type { Query } from './search-types.js'

// Each test here only rules lines out that the full check (on the parsed record) would rule out
// too, so the results are those of parsing every line. JSON may spell any character as a `\`
// escape, so a line with a backslash is always left to the full check.

const BACKSLASH = 0x5c
const LEVEL_KEY = Buffer.from('"level"')
const TIME_KEY = Buffer.from('"time"')
/** Longest run of digits read as an exact integer (2^53 has 16). */
const MAX_DIGITS = 15

/** The byte-level tests that spare decoding and parsing lines which cannot match `query`. */
export function lineFilterFor(query: Query): LineFilter {
  const tests: ((line: Buffer) => boolean)[] = []
  const { minLevel, since, until } = query
  if (minLevel !== undefined) tests.push((line) => mayHaveLevel(line, minLevel))
  if (since !== Number.NEGATIVE_INFINITY || until !== Number.POSITIVE_INFINITY) {
    tests.push((line) => mayHaveTime(line, since, until))
  }
  return { needles: needlesFor(query), accepts: allOf(tests) }
}

function needlesFor(query: Query): Buffer[] {
  // W3C trace ids are written in lowercase, which is what `traceId` was turned into.
  if (query.traceId !== undefined) return [Buffer.from(query.traceId)]
  // Text in `msg` is in the raw line as is unless the line escapes something (a backslash).
  if (query.grepText !== undefined) return [Buffer.from(query.grepText), Buffer.from([BACKSLASH])]
  return []
}

function allOf(tests: ((line: Buffer) => boolean)[]): ((line: Buffer) => boolean) | undefined {
  if (tests.length === 0) return undefined
  if (tests.length === 1) return tests[0]
  return (line) => tests.every((test) => test(line))
}

/** False when every `"level"` key of the line holds a plain integer below `min`, or there is none. */
export function mayHaveLevel(line: Buffer, min: number): boolean {
  return mayHaveValue(line, LEVEL_KEY, (value) => value >= min)
}

/** False when every `"time"` key of the line holds a plain integer outside [since, until), or there is none. */
export function mayHaveTime(line: Buffer, since: number, until: number): boolean {
  return mayHaveValue(line, TIME_KEY, (value) => value >= since && value < until)
}

/**
 * The parsed record's value for `key` is the last top-level occurrence, which is one of the
 * occurrences in the bytes: when none of them can pass, the record cannot. Strings, fractions and
 * other forms are left to the full check.
 */
function mayHaveValue(line: Buffer, key: Buffer, passes: (value: number) => boolean): boolean {
  if (line.indexOf(BACKSLASH) !== -1) return true
  for (let at = line.indexOf(key); at !== -1; at = line.indexOf(key, at + key.length)) {
    const value = integerAfterKey(line, at + key.length)
    if (value === undefined) continue // not a key: the same text as a value
    if (Number.isNaN(value) || passes(value)) return true
  }
  return false
}

/** The integer after `: ` at `from`; NaN for any other value; undefined when no colon follows. */
function integerAfterKey(line: Buffer, from: number): number | undefined {
  let i = skipSpace(line, from)
  if (line[i] !== 0x3a /* : */) return undefined
  i = skipSpace(line, i + 1)
  const first = i
  let value = 0
  for (let c = line[i]; c !== undefined && c >= 0x30 && c <= 0x39; c = line[++i]) value = value * 10 + (c - 0x30)
  const next = line[i]
  const digits = i - first
  if (digits === 0 || digits > MAX_DIGITS || next === 0x2e /* . */ || next === 0x65 || next === 0x45 /* e E */) {
    return Number.NaN
  }
  return value
}

function skipSpace(line: Buffer, from: number): number {
  let i = from
  for (let c = line[i]; c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a; c = line[++i]);
  return i
}
