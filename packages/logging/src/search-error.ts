import { brandError, hasBrand } from '@backplane/internal'
/** Stable codes of the errors `searchLogs` and `backplane-logs` throw. */
export type SearchErrorCode = 'LOGGING_SEARCH_INVALID'

/** One thing wrong with a search: which option, the value given, and what was expected. */
export interface SearchIssue {
  /** Option name (`since`) or, from the CLI, the flag (`--since`). */
  readonly option: string
  readonly received?: unknown
  readonly expected: string
}

const BRAND = '@backplane/logging/SearchError'

/**
 * Invalid search options. The message names every offending option with its value and what was
 * expected, e.g. `--since "yesterday": expected an ISO date/time or a relative duration like 15m,
 * 2h, 7d`; `issues` holds the same as data.
 */
export class SearchError extends Error {
  override readonly name = 'SearchError'
  readonly code: SearchErrorCode = 'LOGGING_SEARCH_INVALID'
  readonly issues: readonly SearchIssue[]

  constructor(issues: readonly SearchIssue[], options?: { cause?: unknown }) {
    super(issues.map(formatIssue).join('; '), options?.cause === undefined ? undefined : { cause: options.cause })
    brandError(this, BRAND)
    this.issues = issues
  }

  /** True for a SearchError from any installed copy of this package. */
  static is(value: unknown): value is SearchError {
    return hasBrand(value, BRAND)
  }
}

function formatIssue(issue: SearchIssue): string {
  if (!('received' in issue) || issue.received === undefined) return `${issue.option}: expected ${issue.expected}`
  return `${issue.option} ${describe(issue.received)}: expected ${issue.expected}`
}

function describe(value: unknown): string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (value instanceof RegExp || typeof value !== 'object' || value === null) return String(value)
  try {
    return JSON.stringify(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}
