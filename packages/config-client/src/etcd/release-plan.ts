/**
 * What a release does to the keys under a prefix, computed without etcd: the changes a publisher
 * asks for (set paths, delete paths, or replace everything with a tree) applied to the keys read,
 * and the key-by-key difference that the release record keeps.
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { parseOptions } from '../options.js'
import { type ConfigTree, isPlainObject, splitPath } from '../tree.js'
import { pathToKey } from './keys.js'

/** A stored ReleaseChange, as records hold it. */
export const changeSchema = z.strictObject({
  key: z.string(),
  prev: z.string().optional(),
  next: z.string().optional(),
})

/** What release and gray release records share: who, when, why, on top of which release, the diff. */
export const recordShape = {
  id: z.string(),
  seq: z.number().int().positive(),
  /** ISO time it was written. */
  time: z.string(),
  author: z.string(),
  message: z.string(),
  /** The release that was current when it was written (none before the first). */
  basedOn: z.string().optional(),
  changes: z.array(changeSchema),
}

/** One key a release changed: `prev` undefined when it created the key, `next` when it deleted it. */
export interface ReleaseChange {
  readonly key: string
  readonly prev?: string | undefined
  readonly next?: string | undefined
}

const SEGMENT_RULE = 'a dotted path of non-empty names without "/", e.g. payment.timeoutMs'

const isDottedPath = (path: string) =>
  path !== '' && splitPath(path).every((part) => part !== '' && !part.includes('/'))
const notDotted = (path: string) => `expected ${SEGMENT_RULE}, got ${JSON.stringify(path)}`

const dottedPath = z.string().refine(isDottedPath, { error: (issue) => notDotted(String(issue.input)) })

// Record keys checked here, not by a key schema: zod reports a bad record key as "Invalid key in record".
const pathRecord = z.record(z.string(), z.unknown()).superRefine((record, ctx) => {
  for (const path of Object.keys(record))
    if (!isDottedPath(path)) ctx.addIssue({ code: 'custom', path: [path], message: notDotted(path) })
})

const treeSchema = z.custom<ConfigTree>(isPlainObject, { error: 'expected a plain object: the whole configuration' })

export const releaseChangesSchema = z
  .strictObject({
    /**
     * Dotted path → value, written to the one key at that path: text as given (like `etcdctl put`),
     * anything else as JSON. Keys under the path stay (and win); delete them to replace a subtree.
     */
    set: pathRecord.optional(),
    /** Dotted paths: the key at each and every key under it are deleted. */
    delete: z.array(dottedPath).optional(),
    /** The whole configuration: one key per leaf (arrays are leaves); every other key is deleted. */
    replace: treeSchema.optional(),
  })
  .refine((c) => c.replace === undefined || (c.set === undefined && c.delete === undefined), {
    error: 'replace stands alone: pass either replace, or set and/or delete',
  })
  .refine((c) => c.replace !== undefined || c.set !== undefined || c.delete !== undefined, {
    error: 'nothing to publish: pass set, delete or replace',
  })

export type ReleaseChanges = z.input<typeof releaseChangesSchema>

/** The text stored for a value: strings as they are, anything else as JSON (bigint as digits). */
export function storedText(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return value.toISOString()
  const text = JSON.stringify(value)
  if (text === undefined) throw new ConfigError('CONFIG_INVALID_OPTIONS', `cannot store ${String(value)}: not JSON`)
  return text
}

/** Every leaf of `tree` as a key under `prefix` (plain objects are walked, anything else is a leaf). */
export function flattenTree(tree: ConfigTree, prefix: string, out = new Map<string, string>()): Map<string, string> {
  const walk = (node: unknown, path: string[]) => {
    if (isPlainObject(node)) {
      for (const [name, child] of Object.entries(node)) {
        if (name === '' || name.includes('/'))
          throw new ConfigError(
            'CONFIG_INVALID_OPTIONS',
            `replace: the name ${JSON.stringify(name)} at ${path.join('.') || '(root)'} cannot be an etcd key segment: expected a non-empty name without "/"`,
          )
        if (child !== undefined) walk(child, [...path, name])
      }
      return
    }
    if (path.length > 0) out.set(pathToKey(prefix, path), storedText(node))
  }
  walk(tree, [])
  return out
}

/** The keys after `changes`: a new map, `current` untouched. */
export function applyChanges(
  current: ReadonlyMap<string, string>,
  prefix: string,
  raw: ReleaseChanges,
): Map<string, string> {
  const changes = parseOptions(releaseChangesSchema, raw, 'publish')
  if (changes.replace !== undefined) return flattenTree(changes.replace, prefix)
  const next = new Map(current)
  for (const path of changes.delete ?? []) {
    const key = pathToKey(prefix, splitPath(path))
    for (const existing of current.keys()) if (existing === key || existing.startsWith(`${key}/`)) next.delete(existing)
  }
  for (const [path, value] of Object.entries(changes.set ?? {})) {
    const key = pathToKey(prefix, splitPath(path))
    // One key, as `etcdctl put` writes it: keys under it stay and, as the etcd source merges, win.
    if (value !== undefined) next.set(key, storedText(value))
  }
  return next
}

/** What differs between two sets of keys, sorted by key. */
export function diffKeys(prev: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>): ReleaseChange[] {
  const keys = new Set([...prev.keys(), ...next.keys()])
  const out: ReleaseChange[] = []
  for (const key of [...keys].sort()) {
    const before = prev.get(key)
    const after = next.get(key)
    if (before === after) continue
    out.push({
      key,
      ...(before === undefined ? {} : { prev: before }),
      ...(after === undefined ? {} : { next: after }),
    })
  }
  return out
}
