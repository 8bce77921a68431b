/** Parsers for the human-readable sizes ('10M') and durations ('14d') used in options. */

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

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }
const DURATION_PATTERN = /^(\d+)\s*([smhdw])$/

/** Milliseconds from `30s`, `15m`, `2h`, `14d`, `2w`; undefined when malformed. */
export function parseDuration(value: string): number | undefined {
  const m = DURATION_PATTERN.exec(value.trim())
  if (!m) return undefined
  const ms = Number(m[1]) * (DURATION_UNITS[m[2] as string] as number)
  return ms > 0 ? ms : undefined
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
