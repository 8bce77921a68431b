/** Parsers for the human-readable sizes ('10M') and rotation intervals ('1d') used in options. */

const SIZE_UNITS: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }
const SIZE_PATTERN = /^(\d+)\s*([BKMG])(?:B|iB)?$/i

/** Bytes from `512K`, `10M`, `1G`, `100B` or a plain number of bytes; undefined when malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined
  const m = SIZE_PATTERN.exec(value.trim())
  if (!m) return undefined
  const bytes = Number(m[1]) * (SIZE_UNITS[(m[2] as string).toUpperCase()] as number)
  return bytes > 0 ? bytes : undefined
}

/**
 * Rotation intervals as rotating-file-stream understands them: `<n>M` months, `<n>d` days, and
 * `h`, `m`, `s` units that divide a day, an hour and a minute evenly (so boundaries are stable).
 */
const INTERVAL_PATTERN = /^(\d+)([Mdhms])$/
const INTERVAL_DIVIDES: Record<string, number> = { h: 24, m: 60, s: 60 }

export function isValidInterval(value: string): boolean {
  const m = INTERVAL_PATTERN.exec(value)
  if (!m) return false
  const n = Number(m[1])
  const divides = INTERVAL_DIVIDES[m[2] as string]
  return n > 0 && (divides === undefined || divides % n === 0)
}
