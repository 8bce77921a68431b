import { type Backoff, deprecate } from '@backplane/internal'

/** Code of this package's DeprecationWarnings: `BACKPLANE_DEP_MESSAGING:<where>.<option>`. */
export const DEPRECATION_CODE = 'BACKPLANE_DEP_MESSAGING'

/** A subscription's retries when it says nothing: 3 attempts, 100 ms doubling up to 30 s, full jitter. */
export const DEFAULT_RETRY: Backoff = { maxAttempts: 3, initialDelay: 100, maxDelay: 30_000, factor: 2, jitter: 'full' }

/** The backoff shape before `retry`, still accepted (with a warning) where it was. */
export interface LegacyBackoff {
  initialMs?: number | undefined
  maxMs?: number | undefined
  multiplier?: number | undefined
  jitter?: 'full' | 'none' | undefined
}

/** The options older versions took next to `retry`'s place, typed so that existing code compiles. */
export interface LegacyRetryOptions {
  /** @deprecated use `retry: { maxAttempts }` */
  maxAttempts?: number | undefined
  /** @deprecated use `retry: { initialDelay, maxDelay, factor, jitter }` */
  backoff?: LegacyBackoff | undefined
}

const RENAMED: Readonly<Record<string, string>> = { initialMs: 'initialDelay', maxMs: 'maxDelay', multiplier: 'factor' }

/** `{ initialMs, maxMs, multiplier, jitter }` in the retry shape's names (unknown fields kept for validation to name). */
function fromLegacyBackoff(backoff: unknown): Record<string, unknown> {
  if (typeof backoff !== 'object' || backoff === null || Array.isArray(backoff)) return { backoff }
  return Object.fromEntries(Object.entries(backoff).map(([name, value]) => [RENAMED[name] ?? name, value]))
}

function warn(where: string, from: string, to: string): void {
  deprecate(
    `${DEPRECATION_CODE}:${where}.${from}`,
    `${where}: option "${from}" is deprecated, use "${to}" (the retry shape { maxAttempts, initialDelay, maxDelay, factor, jitter }; delays also accept a duration string like "30s")`,
  )
}

/**
 * Moves the deprecated `maxAttempts` and `backoff` of an options object into its `retry`, with a
 * one-time DeprecationWarning each. A field given in `retry` wins over the old one.
 */
export function moveLegacyRetry<T>(input: T, where: string): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input
  const record = input as Record<string, unknown>
  const hasAttempts = Object.hasOwn(record, 'maxAttempts')
  const hasBackoff = Object.hasOwn(record, 'backoff')
  if (!hasAttempts && !hasBackoff) return input
  const { maxAttempts, backoff, retry, ...rest } = record
  if (hasAttempts) warn(where, 'maxAttempts', 'retry.maxAttempts')
  if (hasBackoff) warn(where, 'backoff', 'retry')
  // A retry that is not an object is left as it is, for validation to report.
  if (retry !== undefined && (typeof retry !== 'object' || retry === null || Array.isArray(retry)))
    return { ...rest, retry } as T
  const merged: Record<string, unknown> = {
    ...(hasBackoff && backoff !== undefined ? fromLegacyBackoff(backoff) : {}),
    ...(hasAttempts && maxAttempts !== undefined ? { maxAttempts } : {}),
  }
  for (const [name, value] of Object.entries((retry as Record<string, unknown> | undefined) ?? {}))
    if (value !== undefined) merged[name] = value
  return { ...rest, retry: merged } as T
}
