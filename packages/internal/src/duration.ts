import { z } from 'zod'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1e3, m: 60e3, h: 3_600e3, d: 86_400e3, w: 604_800e3 }
const PART = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/

/**
 * A length of time: a number of milliseconds, or a string like "500ms", "1.5s", "30s", "15m",
 * "2h", "1d", "1w", or several parts added up ("1h30m"). A bare numeric string is milliseconds.
 */
export type Duration = number | string

/** What every package's error message says it expected where a duration was wrong. */
export const DURATION_EXPECTED = 'a duration like 500ms, 1.5s, 30s, 15m, 2h, 1h30m, 1d, 1w or a number of milliseconds'

/** Milliseconds of a duration, or undefined when it is not one (negative, NaN, unknown unit). */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (text === '' || text.length > 64) return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  let total = 0
  let rest = text
  while (rest.length > 0) {
    const match = PART.exec(rest)
    if (!match) return undefined
    total += Number(match[1]) * (UNITS[match[2] as string] as number)
    rest = rest.slice(match[0].length)
  }
  return Number.isFinite(total) ? total : undefined
}

export interface DurationRule {
  /** Smallest accepted value in ms (inclusive). Default 0. */
  min?: number
  /** Largest accepted value in ms (inclusive). */
  max?: number
  /** Round to whole milliseconds (most timers want integers). Default true. */
  integer?: boolean
}

/**
 * A zod schema for a duration option: accepts a number of ms or a duration string, outputs ms.
 * One schema for every package, so "1h30m" means the same in logging, messaging, config and
 * workflow options alike.
 */
export function durationSchema(rule: DurationRule = {}) {
  const min = rule.min ?? 0
  const bounds = rule.max === undefined ? `at least ${min} ms` : `between ${min} ms and ${rule.max} ms`
  return z.union([z.number(), z.string()], { error: `expected ${DURATION_EXPECTED}` }).transform((value, ctx) => {
    const parsed = parseDuration(value)
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${DURATION_EXPECTED}, got ${JSON.stringify(value)}` })
      return z.NEVER
    }
    const ms = rule.integer === false ? parsed : Math.round(parsed)
    if (ms < min || (rule.max !== undefined && ms > rule.max)) {
      ctx.addIssue({ code: 'custom', message: `expected a duration ${bounds}, got ${JSON.stringify(value)}` })
      return z.NEVER
    }
    return ms
  })
}
