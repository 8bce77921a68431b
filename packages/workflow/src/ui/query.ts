/**
 * The inspector API's query strings, checked whole: known parameters only, each at most once, each
 * in its own shape. Anything else is a 400 naming every problem; nothing here can throw otherwise.
 */
import { issueLines } from '@backplane/internal'
import { z } from 'zod'
import { INSTANCE_STATUSES, type InstanceStatus } from '../store.js'
import { ApiError } from './http.js'

const text = z.string().min(1, 'expected a non-empty value').max(200, 'expected at most 200 characters')
const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `expected an integer from ${min} to ${max}`)

const filter = {
  machine: text.optional(),
  version: integer(1, 999_999_999).optional(),
  state: text.optional(),
  status: z.enum(INSTANCE_STATUSES, `expected ${INSTANCE_STATUSES.join(', ')}`).optional(),
}

const schemas = {
  counts: z.strictObject(filter),
  list: z.strictObject({ ...filter, limit: integer(1, 1000).optional(), after: text.optional() }),
  diagram: z.strictObject({ machine: text, version: integer(1, 999_999_999), instance: text.optional() }),
  stream: z.strictObject({
    ...filter,
    limit: integer(1, 1000).optional(),
    after: text.optional(),
    instance: text.optional(),
  }),
  none: z.strictObject({}),
}

export type QueryKind = keyof typeof schemas

export interface Query {
  machine?: string | undefined
  version?: number | undefined
  state?: string | undefined
  status?: InstanceStatus | undefined
  limit?: number | undefined
  after?: string | undefined
  instance?: string | undefined
}

/** Parses the raw query string of a `kind` of request, or throws a 400 ApiError. */
export function parseQuery<K extends QueryKind>(kind: K, search: string): z.output<(typeof schemas)[K]> & Query {
  const params = new URLSearchParams(search)
  const values: Record<string, string> = {}
  const problems: string[] = []
  for (const [key, value] of params) {
    if (Object.hasOwn(values, key)) problems.push(`${key}: given more than once`)
    values[key] = value
  }
  const result = schemas[kind].safeParse(values)
  if (!result.success) problems.push(...issueLines(result.error.issues, '(query)'))
  if (problems.length > 0 || !result.success)
    throw new ApiError(400, 'INVALID_QUERY', `invalid query: ${[...new Set(problems)].join('; ')}`)
  return result.data as z.output<(typeof schemas)[K]> & Query
}

/** Decodes one path segment (an instance id), or throws a 400 ApiError for a malformed escape. */
export function decodeSegment(segment: string): string {
  let id: string
  try {
    id = decodeURIComponent(segment)
  } catch {
    throw new ApiError(400, 'INVALID_QUERY', 'invalid instance id: malformed percent-encoding in the path')
  }
  if (id.length === 0 || id.length > 200)
    throw new ApiError(400, 'INVALID_QUERY', 'invalid instance id: expected 1 to 200 characters')
  return id
}
