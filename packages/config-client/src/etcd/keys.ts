/**
 * etcd keys ↔ configuration paths: under the prefix `/config/orders/`, the key
 * `/config/orders/payment/timeoutMs` is the path `payment.timeoutMs`, and a key holding a JSON
 * object is a whole subtree.
 */
import { z } from 'zod'
import { coerceString } from '../coerce.js'
import { leafKind, schemaAt } from '../schema.js'
import { isSealed } from '../sealing/envelope.js'
import { type ConfigTree, isPlainObject, mergeTrees, setAt } from '../tree.js'

/** An app's key prefix, as the etcd source, `releases()` and the CLI take it. */
export const prefixSchema = z
  .string()
  .min(1)
  .refine((p) => p.endsWith('/'), { error: "expected a prefix ending in '/', e.g. '/config/orders/'" })

export function keyToPath(prefix: string, key: string): string[] {
  return key
    .slice(prefix.length)
    .split('/')
    .filter((part) => part !== '')
}

export function pathToKey(prefix: string, path: readonly string[]): string {
  return prefix + path.join('/')
}

/**
 * A stored value as the schema wants it at that path. Text written by `etcdctl put` is coerced like
 * environment variables (`2500` → 2500); JSON is parsed, except that a string field keeps the text
 * as it is (so `007` stays `"007"`), unless it is a JSON string literal (`"007"`).
 */
export function decodeValue(schema: unknown, raw: string): unknown {
  if (leafKind(schema) === 'string') {
    if (raw.startsWith('"')) {
      try {
        const parsed: unknown = JSON.parse(raw)
        if (typeof parsed === 'string') return parsed
      } catch {}
    }
    return raw
  }
  return coerceString(schema, raw)
}

/** What a sealed value (see sealing/envelope.ts) becomes in the tree: opened and decoded, or kept sealed. */
export type SealedValueHandler = (key: string, stored: string, path: string[]) => unknown

/**
 * The tree of every key under the prefix. Keys are applied in sorted order, so deeper keys win.
 * Sealed values go through `onSealed`; without it they are decoded like any other text.
 */
export function buildTree(
  kvs: ReadonlyMap<string, string>,
  prefix: string,
  schema: unknown,
  onSealed?: SealedValueHandler,
): ConfigTree {
  const tree: ConfigTree = {}
  for (const key of [...kvs.keys()].sort()) {
    const path = keyToPath(prefix, key)
    const raw = kvs.get(key) as string
    const value = onSealed && isSealed(raw) ? onSealed(key, raw, path) : decodeValue(schemaAt(schema, path), raw)
    if (path.length === 0) {
      if (isPlainObject(value)) Object.assign(tree, mergeTrees([tree, value]))
      continue
    }
    const existing = path.reduce<unknown>((node, part) => (isPlainObject(node) ? node[part] : undefined), tree)
    setAt(tree, path, isPlainObject(value) && isPlainObject(existing) ? mergeTrees([existing, value]) : value)
  }
  return tree
}

/** The key that holds the value at `path` (the deepest key at or above it). */
export function keyHolding(
  kvs: ReadonlyMap<string, string>,
  prefix: string,
  path: readonly string[],
): string | undefined {
  let best: string | undefined
  let bestDepth = -1
  for (const key of kvs.keys()) {
    const keyPath = keyToPath(prefix, key)
    if (keyPath.length > path.length || keyPath.length <= bestDepth) continue
    if (keyPath.every((part, i) => part === path[i])) {
      best = key
      bestDepth = keyPath.length
    }
  }
  return best
}
