/** Retry policies: the shared retry shape, workflow's defaults (equal jitter) and its checks. */
import { backoffDelay } from '@backplane/internal'
import { describe, expect, it } from 'vitest'
import { RETRY_DEFAULTS, resolveRetryPolicy, retryPolicyProblems } from '../src/retry.js'

describe('retry policies', () => {
  it('keeps the defaults: 3 attempts, 1s doubling up to 1m, each delay between half and all of it', () => {
    const policy = resolveRetryPolicy()
    expect(policy).toEqual({ ...RETRY_DEFAULTS, jitter: 'equal', nonRetryable: [] })
    expect([1, 2, 3].map((attempt) => backoffDelay(policy, attempt, () => 0))).toEqual([500, 1000, 2000])
    expect([1, 2, 3].map((attempt) => backoffDelay(policy, attempt, () => 1))).toEqual([1000, 2000, 4000])
    expect(backoffDelay(policy, 20, () => 1)).toBe(60_000)
  })

  it('merges field by field, later policies winning, durations as strings, nonRetryable added up', () => {
    const policy = resolveRetryPolicy({ maxAttempts: 5, initialDelay: '2s', nonRetryable: ['A'] }, undefined, {
      maxDelay: '10s',
      factor: 3,
      jitter: false,
      nonRetryable: ['B'],
    })
    expect(policy).toEqual({
      maxAttempts: 5,
      initialDelay: 2000,
      maxDelay: 10_000,
      factor: 3,
      jitter: 'none',
      nonRetryable: ['A', 'B'],
    })
    expect([1, 2, 3].map((attempt) => backoffDelay(policy, attempt))).toEqual([2000, 6000, 10_000])
  })

  it("reads jitter true as 'full' and accepts 'full', 'equal' and 'none'", () => {
    expect(resolveRetryPolicy({ jitter: true }).jitter).toBe('full')
    expect(resolveRetryPolicy({ jitter: 'full' }).jitter).toBe('full')
    expect(resolveRetryPolicy({ jitter: 'none' }).jitter).toBe('none')
    expect(backoffDelay(resolveRetryPolicy({ jitter: true }), 1, () => 0)).toBe(0)
  })

  it('names each problem with where it is', () => {
    expect(retryPolicyProblems(undefined, 'retry')).toEqual([])
    expect(retryPolicyProblems(3, 'retry')).toEqual([
      'retry: expected a retry policy object { maxAttempts, initialDelay, maxDelay, factor, jitter, nonRetryable }',
    ])
    const problems = retryPolicyProblems(
      { maxAttempts: 0, initialDelay: 'soon', factor: 0.5, jitter: 'some', nonRetryable: 'E', extra: 1 },
      'state a.invoke.retry',
    )
    expect(problems).toEqual([
      expect.stringMatching(/^state a\.invoke\.retry\.maxAttempts: /),
      expect.stringMatching(/^state a\.invoke\.retry\.initialDelay: expected a duration like 500ms, .* got "soon"/),
      expect.stringMatching(/^state a\.invoke\.retry\.factor: /),
      "state a.invoke.retry.jitter: expected 'full', 'equal', 'none', true or false",
      'state a.invoke.retry: unknown option(s) "extra"',
      'state a.invoke.retry.nonRetryable: expected a list of error names or codes',
    ])
  })
})
