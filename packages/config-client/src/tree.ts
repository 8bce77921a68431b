/** A configuration tree as sources deliver it: plain objects, arrays and JSON-like leaves. */
export type ConfigTree = Record<string, unknown>

/** Plain objects are merged key by key; anything else (arrays, dates, class instances) is a leaf. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** `a.b.c` → `['a', 'b', 'c']`; `''` → `[]`. */
export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('.')
}

export function getAt(tree: unknown, path: readonly string[]): unknown {
  let node = tree
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined
    node = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined
  }
  return node
}

/** Sets `value` at `path` in `tree` (mutating it), replacing non-objects on the way by objects. */
export function setAt(tree: ConfigTree, path: readonly string[], value: unknown): void {
  if (path.length === 0) {
    if (isPlainObject(value)) Object.assign(tree, value)
    return
  }
  let node = tree
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string
    const next = node[key]
    if (isPlainObject(next)) node = next
    else {
      const created: ConfigTree = {}
      node[key] = created
      node = created
    }
  }
  node[path[path.length - 1] as string] = value
}

/** Removes the value at `path` (mutating `tree`) and any objects left empty above it. */
export function deleteAt(tree: ConfigTree, path: readonly string[]): boolean {
  if (path.length === 0) return false
  const parents: ConfigTree[] = []
  let node = tree
  for (let i = 0; i < path.length - 1; i++) {
    const next = node[path[i] as string]
    if (!isPlainObject(next)) return false
    parents.push(node)
    node = next
  }
  const last = path[path.length - 1] as string
  if (!Object.hasOwn(node, last)) return false
  delete node[last]
  for (let i = parents.length - 1; i >= 0 && Object.keys(node).length === 0; i--) {
    const parent = parents[i] as ConfigTree
    delete parent[path[i] as string]
    node = parent
  }
  return true
}

/**
 * Deep-merges the layers left to right into a new tree: later layers win, plain objects merge key
 * by key, arrays and other values replace, `undefined` leaves the lower value in place. Inputs are
 * never mutated.
 */
export function mergeTrees(layers: readonly unknown[]): ConfigTree {
  const out: ConfigTree = {}
  for (const layer of layers) if (isPlainObject(layer)) mergeInto(out, layer)
  return out
}

function mergeInto(target: ConfigTree, source: Record<string, unknown>): void {
  for (const key of Object.keys(source)) {
    const value = source[key]
    if (value === undefined) continue
    const existing = target[key]
    if (isPlainObject(value)) {
      const base: ConfigTree = isPlainObject(existing) ? existing : {}
      if (base !== existing) target[key] = base
      mergeInto(base, value)
    } else {
      target[key] = value
    }
  }
}

/** A deep copy of plain objects and arrays (leaves shared): what merging needs to stay side-effect free. */
export function cloneTree<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneTree) as T
  if (isPlainObject(value)) {
    const out: ConfigTree = {}
    for (const key of Object.keys(value)) out[key] = cloneTree(value[key])
    return out as T
  }
  return value
}

/** Structural equality of JSON-like values (plus Date, Map, Set, bigint, NaN). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime()
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false
    for (const [k, v] of a) if (!b.has(k) || !deepEqual(v, b.get(k))) return false
    return true
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false
    for (const v of a) if (!b.has(v)) return false
    return true
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const key of ka) {
    if (!Object.hasOwn(b, key)) return false
    if (!deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false
  }
  return true
}

/** One changed value: the deepest path at which the old and new configuration differ. */
export interface Change {
  /** Dotted path, e.g. `payment.timeoutMs`. */
  readonly path: string
  /** `add`: there was no value; `remove`: there is none any more; `update`: it changed. */
  readonly kind: 'add' | 'remove' | 'update'
  /** The old value (`'[redacted]'` for secret fields; `undefined` for `add`). */
  readonly prev: unknown
  /** The new value (`'[redacted]'` for secret fields; `undefined` for `remove`). */
  readonly next: unknown
  /** True when the path is (or lies inside) a field marked secret. */
  readonly secret: boolean
}

/**
 * Leaf-level differences between two trees: plain objects are descended into, anything else (arrays
 * included) is compared whole and reported at its own path.
 */
export function diffTrees(prev: unknown, next: unknown, path: string[] = [], out: RawChange[] = []): RawChange[] {
  if (isPlainObject(prev) && isPlainObject(next)) {
    const keys = new Set([...Object.keys(prev), ...Object.keys(next)])
    for (const key of keys) {
      path.push(key)
      diffTrees(prev[key], next[key], path, out)
      path.pop()
    }
    return out
  }
  if (deepEqual(prev, next)) return out
  if (isPlainObject(next) && prev === undefined) {
    // A whole subtree appeared: report its leaves, so path listeners and logs see each value.
    for (const key of Object.keys(next)) {
      path.push(key)
      diffTrees(undefined, next[key], path, out)
      path.pop()
    }
    return out
  }
  if (isPlainObject(prev) && next === undefined) {
    for (const key of Object.keys(prev)) {
      path.push(key)
      diffTrees(prev[key], undefined, path, out)
      path.pop()
    }
    return out
  }
  out.push({ path: [...path], prev, next })
  return out
}

export interface RawChange {
  path: string[]
  prev: unknown
  next: unknown
}

/** Freezes a tree and everything reachable through plain objects and arrays. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}
