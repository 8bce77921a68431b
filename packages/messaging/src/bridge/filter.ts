import { z } from 'zod'

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])

/** Which messages a subscription or route takes: every listed condition must hold. */
export const filterSchema = z
  .strictObject({
    /** CloudEvents `type`, or several (any of them); `*` matches any characters. */
    type: stringOrList.optional(),
    /** Header name → value (or values, any of them); names are matched case-insensitively. */
    headers: z.record(z.string().min(1), z.union([z.string(), z.array(z.string()).min(1)])).optional(),
  })
  .refine((f) => f.type !== undefined || f.headers !== undefined, 'a filter needs `type` or `headers`')
export type Filter = z.output<typeof filterSchema>

export type HeaderPredicate = (headers: Readonly<Record<string, string>>) => boolean

function globs(values: string | readonly string[]): (value: string) => boolean {
  const list = typeof values === 'string' ? [values] : values
  const exact = new Set(list.filter((v) => !v.includes('*')))
  const patterns = list
    .filter((v) => v.includes('*'))
    .map(
      (v) =>
        new RegExp(
          `^${v
            .split('*')
            .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ),
    )
  return (value) => exact.has(value) || patterns.some((p) => p.test(value))
}

/**
 * A filter as a predicate over message headers: `type` is the CloudEvents `ce-type`; each
 * `headers` entry must hold (names case-insensitive, values exact or with `*`). No filter: all pass.
 */
export function compileFilter(filter: Filter | undefined): HeaderPredicate | undefined {
  if (filter === undefined) return undefined
  const checks: HeaderPredicate[] = []
  if (filter.type !== undefined) {
    const match = globs(filter.type)
    checks.push((h) => {
      const type = h['ce-type']
      return type !== undefined && match(type)
    })
  }
  for (const [name, values] of Object.entries(filter.headers ?? {})) {
    const key = name.toLowerCase()
    const match = globs(values)
    checks.push((h) => {
      const value = h[key]
      return value !== undefined && match(value)
    })
  }
  return (headers) => checks.every((check) => check(headers))
}
