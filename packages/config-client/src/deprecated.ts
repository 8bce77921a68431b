/**
 * Old option names (`debounceMs`, `timeoutMs`, `minRetryMs`, ...) keep working: they are moved to
 * their new names before parsing, with one DeprecationWarning per process per option.
 */
import { deprecate, renameOptions } from '@backplane/internal'

/** The code of every deprecation warning of this package. */
export const DEPRECATION_CODE = 'BACKPLANE_DEP_CONFIG'

export interface Rename {
  from: string
  to: string
  convert?: (value: unknown) => unknown
}

/** Moves each `from` option to `to` (a given `to` wins), warning once per option. */
export function renamed<T>(input: T, renames: readonly Rename[], where: string): T {
  return renameOptions(input, renames, where, DEPRECATION_CODE)
}

/**
 * Moves flat retry options (`minRetryMs: 100`) into the retry shape (`retry: { initialDelay: 100 }`),
 * warning once per option. A field already given in `retry` wins.
 */
export function foldIntoRetry<T>(input: T, fields: Readonly<Record<string, string>>, where: string): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input
  const given = input as Record<string, unknown>
  const old = Object.keys(fields).filter((from) => Object.hasOwn(given, from))
  if (old.length === 0) return input
  const out: Record<string, unknown> = { ...given }
  const retry: Record<string, unknown> =
    typeof out.retry === 'object' && out.retry !== null ? { ...(out.retry as Record<string, unknown>) } : {}
  for (const from of old) {
    const to = fields[from] as string
    if (retry[to] === undefined) retry[to] = out[from]
    delete out[from]
    deprecate(
      `${DEPRECATION_CODE}:${where}.${from}`,
      `${where}: option "${from}" is deprecated, use "retry: { ${to} }" (same meaning; it also accepts a duration string like "30s")`,
    )
  }
  out.retry = retry
  return out as T
}
