import type { z } from 'zod'

/** One line per zod issue: `path: message`, with unknown keys named. */
export function issueLines(issues: readonly z.core.$ZodIssue[], root = '(options)'): string[] {
  return issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : root
    if (issue.code === 'unrecognized_keys')
      return `${path}: unknown option(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    // zod leaves `input` out of issues unless asked, so a missing value is told by the message.
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) return `${path}: required`
    return `${path}: ${issue.message}`
  })
}

/**
 * Parses `input` with `schema`, or throws the package's own typed error built by `fail` from one
 * message listing every problem and the problems one by one.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  fail: (message: string, details: string[]) => Error,
  what: string,
): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const details = issueLines(result.error.issues)
  throw fail(`invalid ${what} options: ${details.join('; ')}`, details)
}
