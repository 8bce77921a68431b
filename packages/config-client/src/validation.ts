/**
 * The checks of one candidate configuration: the merge of every source's tree validated whole
 * against the schema, the issues of a rejected one traced to their sources, the changes of an
 * accepted one with secret values redacted.
 */
import type { z } from 'zod'
import { ConfigError, type ConfigIssue } from './errors.js'
import { fillObjects, isSecretPath, REDACTED, redact, schemaAt } from './schema.js'
import { type Change, type ConfigTree, diffTrees, mergeTrees } from './tree.js'

/** The sources, keys and revision of the updates applied (or rejected) together. */
export interface Batch {
  sources: string[]
  keys: string[]
  revision: number | undefined
}

export type Validation = { ok: true; data: unknown } | { ok: false; error: z.ZodError }

/** Validates the merge of `trees` (lowest precedence first) against `schema`. */
export function validateMerged(schema: z.ZodType, trees: readonly ConfigTree[]): Validation {
  const input = fillObjects(schema, mergeTrees(trees))
  const result = schema.safeParse(input)
  return result.success ? { ok: true, data: result.data } : { ok: false, error: result.error }
}

/** Where the value at a path came from: the source's name and its own key. */
export type OriginOf = (path: string[]) => { source: string | undefined; key: string | undefined }

/** The CONFIG_INVALID error of a rejected configuration, each issue traced to its source. */
export function invalidError(error: z.ZodError, what: string, batch: Batch, originOf: OriginOf): ConfigError {
  const issues: ConfigIssue[] = error.issues.map((issue) => {
    const path = issue.path.map(String)
    const origin = originOf(path)
    return { path: path.join('.'), message: issue.message, code: issue.code, ...origin }
  })
  const details = issues.map(
    (i) =>
      `${i.path || '(root)'}: ${i.message}${i.source ? ` (from ${i.source}${i.key && i.key !== i.path ? ` ${i.key}` : ''})` : ''}`,
  )
  const trigger = batch.sources.length > 0 ? ` from ${batch.sources.join(', ')}` : ''
  return new ConfigError('CONFIG_INVALID', `${what}${trigger}: ${details.join('; ')}`, {
    details,
    issues,
    source: batch.sources[batch.sources.length - 1],
    keys: batch.keys,
    revision: batch.revision,
    cause: error,
  })
}

/** Every changed leaf between `prev` and `next`, secret values shown as `'[redacted]'`. */
export function describeChanges(schema: z.ZodType, prev: unknown, next: unknown): Change[] {
  return diffTrees(prev, next).map((c): Change => {
    const secret = isSecretPath(schema, c.path)
    const kind = c.prev === undefined ? 'add' : c.next === undefined ? 'remove' : 'update'
    const at = schemaAt(schema, c.path)
    const shown = (v: unknown) => (secret && v !== undefined ? REDACTED : redact(at, v))
    return { path: c.path.join('.'), kind, prev: shown(c.prev), next: shown(c.next), secret }
  })
}
