import { z } from 'zod'
import { durationSchema } from './duration.js'

/**
 * How to spread the delays out. `full` draws each delay uniformly in [0, computed] (AWS's "full
 * jitter": many clients retrying the same failure spread out the most); `equal` draws it in
 * [computed / 2, computed] (never much shorter than planned); `none` waits exactly `computed`.
 * `true` is `full`, `false` is `none`.
 */
export type Jitter = 'full' | 'equal' | 'none' | boolean

/** The retry shape every package accepts: durations as ms or strings like "500ms". */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts?: number | undefined
  /** Delay before the second attempt. */
  initialDelay?: number | string | undefined
  /** Upper bound of any delay. */
  maxDelay?: number | string | undefined
  /** Each delay is the previous times `factor` (before jitter). */
  factor?: number | undefined
  jitter?: Jitter | undefined
}

/** A retry policy with every field resolved to numbers. */
export interface Backoff {
  maxAttempts: number
  initialDelay: number
  maxDelay: number
  factor: number
  jitter: 'full' | 'equal' | 'none'
}

export function jitterKind(jitter: Jitter): Backoff['jitter'] {
  if (jitter === true) return 'full'
  if (jitter === false) return 'none'
  return jitter
}

/** Delay in ms before attempt `attempt + 1`, after `attempt` attempts failed (attempt >= 1). */
export function backoffDelay(
  policy: Pick<Backoff, 'initialDelay' | 'maxDelay' | 'factor' | 'jitter'>,
  attempt: number,
  random: () => number = Math.random,
): number {
  // Capping the exponent keeps factor ** n finite for policies that retry forever.
  const exponent = Math.min(Math.max(0, attempt - 1), 1_000)
  const computed = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** exponent)
  if (policy.jitter === 'full') return Math.round(computed * random())
  if (policy.jitter === 'equal') return Math.round(computed / 2 + (computed / 2) * random())
  return Math.round(computed)
}

/** A counter over backoffDelay for reconnect loops: `next()` after each failure, `reset()` on success. */
export function backoffSequence(policy: Pick<Backoff, 'initialDelay' | 'maxDelay' | 'factor' | 'jitter'>) {
  let attempt = 0
  return {
    next(): number {
      attempt += 1
      return backoffDelay(policy, attempt)
    },
    reset(): void {
      attempt = 0
    },
  }
}

const JITTER_EXPECTED = "'full', 'equal', 'none', true or false"

/** Zod schema for a RetryOptions object: durations parsed, jitter normalised, unknown keys refused. */
export function retrySchema(defaults: Backoff) {
  return z
    .strictObject({
      maxAttempts: z.number().int().min(1).optional(),
      initialDelay: durationSchema().optional(),
      maxDelay: durationSchema({ min: 1 }).optional(),
      factor: z.number().min(1).max(100).optional(),
      jitter: z
        .union([z.enum(['full', 'equal', 'none']), z.boolean()], { error: `expected ${JITTER_EXPECTED}` })
        .optional(),
    })
    .transform(
      (input): Backoff => ({
        maxAttempts: input.maxAttempts ?? defaults.maxAttempts,
        initialDelay: input.initialDelay ?? defaults.initialDelay,
        maxDelay: input.maxDelay ?? defaults.maxDelay,
        factor: input.factor ?? defaults.factor,
        jitter: input.jitter === undefined ? defaults.jitter : jitterKind(input.jitter),
      }),
    )
}
