/**
 * Activity retry policies: the shared retry shape `{ maxAttempts, initialDelay, maxDelay, factor,
 * jitter }` of @backplane/internal plus workflow's `nonRetryable`, checked where they are given and
 * merged field by field (engine default, then the activity's, then the invoke's) where they are used.
 */
import { type Backoff, issueLines, retrySchema } from '@backplane/internal'
import type { RetryPolicy } from './machine.js'

/** An activity without a policy of its own: 3 attempts, 1 s then 2 s apart, each delay between half and all of it. */
export const RETRY_DEFAULTS: Backoff = {
  maxAttempts: 3,
  initialDelay: 1_000,
  maxDelay: 60_000,
  factor: 2,
  jitter: 'equal',
}

const backoffSchema = retrySchema(RETRY_DEFAULTS)

export interface ResolvedRetryPolicy extends Backoff {
  nonRetryable: readonly string[]
}

/** Problems of a retry policy, as messages naming `where` and the field. */
export function retryPolicyProblems(policy: unknown, where: string): string[] {
  if (policy === undefined) return []
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy))
    return [
      `${where}: expected a retry policy object { maxAttempts, initialDelay, maxDelay, factor, jitter, nonRetryable }`,
    ]
  const { nonRetryable, ...backoff } = policy as RetryPolicy
  const problems: string[] = []
  const result = backoffSchema.safeParse(backoff)
  if (!result.success)
    problems.push(...issueLines(result.error.issues.map((i) => ({ ...i, path: [where, ...i.path] }))))
  if (nonRetryable !== undefined && !(Array.isArray(nonRetryable) && nonRetryable.every((n) => typeof n === 'string')))
    problems.push(`${where}.nonRetryable: expected a list of error names or codes`)
  return problems
}

/** Merges checked retry policies, later ones winning field by field, over the defaults. */
export function resolveRetryPolicy(...policies: (RetryPolicy | undefined)[]): ResolvedRetryPolicy {
  const merged: Record<string, unknown> = {}
  const nonRetryable: string[] = []
  for (const policy of policies) {
    if (!policy) continue
    for (const [key, value] of Object.entries(policy)) {
      if (value === undefined) continue
      if (key === 'nonRetryable') nonRetryable.push(...(value as readonly string[]))
      else merged[key] = value
    }
  }
  return { ...backoffSchema.parse(merged), nonRetryable }
}
