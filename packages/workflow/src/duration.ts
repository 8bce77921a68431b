const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1e3, m: 60e3, h: 3_600e3, d: 86_400e3, w: 604_800e3 }

/** A duration: milliseconds, or a string like "500ms", "30s", "15m", "2h", "1d", "1w" (also "1h30m"). */
export type Duration = number | string

/** Milliseconds of a duration, or undefined when it is not one (negative, NaN, unknown unit). */
export function parseDuration(value: Duration): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (text === '') return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  let total = 0
  let rest = text
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/.exec(rest)
    if (!match) return undefined
    total += Number(match[1]) * (UNITS[match[2] as string] as number)
    rest = rest.slice(match[0].length)
  }
  return total
}

export const DURATION_EXPECTED = 'a duration like 500ms, 30s, 15m, 2h, 1d or a number of milliseconds'
