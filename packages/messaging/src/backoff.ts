export interface BackoffOptions {
  /** Delay before the second attempt. */
  initialMs: number
  /** Upper bound of any delay. */
  maxMs: number
  multiplier: number
  /** 'full' draws each delay uniformly in [0, computed]: retries of many consumers spread out. */
  jitter: 'full' | 'none'
}

export const defaultBackoff: BackoffOptions = { initialMs: 100, maxMs: 30_000, multiplier: 2, jitter: 'full' }

/** Delay before attempt `attempt + 1`, after `attempt` attempts failed (attempt >= 1). */
export function backoffDelay(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const computed = Math.min(options.maxMs, options.initialMs * options.multiplier ** Math.max(0, attempt - 1))
  return options.jitter === 'full' ? Math.round(computed * random()) : computed
}
