/**
 * Reading the shape of the app's zod schema: which keys an object has, what type a leaf wants (for
 * coercing strings from env and etcd), which fields are secret. Works on zod 4's `_zod.def`, the
 * structure zod documents for library authors, so any zod 4 schema the app builds is understood.
 */
import { z } from 'zod'
import { type ConfigTree, isPlainObject } from './tree.js'

interface Def {
  type: string
  innerType?: unknown
  shape?: Record<string, unknown>
  catchall?: unknown
  valueType?: unknown
  element?: unknown
  items?: unknown[]
  rest?: unknown
  options?: unknown[]
  left?: unknown
  right?: unknown
  in?: unknown
  out?: unknown
  getter?: () => unknown
  entries?: Record<string, unknown>
  values?: unknown[]
}

/** True for a zod 4 schema (classic or core). */
export function isZodSchema(value: unknown): value is z.ZodType {
  return (
    typeof value === 'object' &&
    value !== null &&
    '_zod' in value &&
    typeof (value as { _zod: unknown })._zod === 'object'
  )
}

function defOf(schema: unknown): Def | undefined {
  return isZodSchema(schema) ? (schema._zod.def as unknown as Def) : undefined
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional'])

/** The schema under optional/nullable/default/catch/readonly/lazy wrappers, and the input side of pipes. */
export function unwrap(schema: unknown): unknown {
  let current = schema
  for (let i = 0; i < 64; i++) {
    const def = defOf(current)
    if (!def) return current
    if (WRAPPERS.has(def.type)) current = def.innerType
    else if (def.type === 'lazy' && def.getter) current = def.getter()
    else if (def.type === 'pipe') current = def.in
    else return current
  }
  return current
}

/** The schema of `key` inside `schema`, or undefined when the schema does not know the key. */
export function childSchema(schema: unknown, key: string): unknown {
  const base = unwrap(schema)
  const def = defOf(base)
  if (!def) return undefined
  switch (def.type) {
    case 'object': {
      if (def.shape && Object.hasOwn(def.shape, key)) return def.shape[key]
      const catchall = defOf(def.catchall)
      return catchall && catchall.type !== 'never' ? def.catchall : undefined
    }
    case 'record':
      return def.valueType
    case 'array':
      return /^\d+$/.test(key) ? def.element : undefined
    case 'tuple': {
      if (!/^\d+$/.test(key)) return undefined
      return def.items?.[Number(key)] ?? def.rest ?? undefined
    }
    case 'union':
      for (const option of def.options ?? []) {
        const child = childSchema(option, key)
        if (child !== undefined) return child
      }
      return undefined
    case 'intersection':
      return childSchema(def.left, key) ?? childSchema(def.right, key)
    default:
      return undefined
  }
}

export function schemaAt(schema: unknown, path: readonly string[]): unknown {
  let current = schema
  for (const key of path) {
    current = childSchema(current, key)
    if (current === undefined) return undefined
  }
  return current
}

/** The keys an object schema declares (for matching `APP_PAYMENT__TIMEOUT_MS` to `timeoutMs`). */
export function declaredKeys(schema: unknown): string[] {
  const def = defOf(unwrap(schema))
  if (!def) return []
  if (def.type === 'object') return Object.keys(def.shape ?? {})
  if (def.type === 'intersection') return [...declaredKeys(def.left), ...declaredKeys(def.right)]
  if (def.type === 'union') return (def.options ?? []).flatMap(declaredKeys)
  return []
}

/** What kind of value a (string) input must become to satisfy the schema. */
export type LeafKind = 'string' | 'number' | 'boolean' | 'bigint' | 'date' | 'null' | 'json' | 'choice' | 'unknown'

export function leafKind(schema: unknown): LeafKind {
  const def = defOf(unwrap(schema))
  if (!def) return 'unknown'
  switch (def.type) {
    case 'string':
    case 'template_literal':
      return 'string'
    case 'number':
    case 'nan':
      return 'number'
    case 'boolean':
      return 'boolean'
    case 'bigint':
      return 'bigint'
    case 'date':
      return 'date'
    case 'null':
      return 'null'
    case 'object':
    case 'array':
    case 'record':
    case 'tuple':
    case 'map':
    case 'set':
    case 'intersection':
      return 'json'
    case 'enum':
    case 'literal':
    case 'union':
      return 'choice'
    default:
      return 'unknown'
  }
}

/** For `choice` leaves: the options (union members) or the allowed literal values. */
export function choices(schema: unknown): { options: unknown[]; values: unknown[] } {
  const def = defOf(unwrap(schema))
  if (!def) return { options: [], values: [] }
  if (def.type === 'union') return { options: def.options ?? [], values: [] }
  if (def.type === 'enum') return { options: [], values: Object.values(def.entries ?? {}) }
  if (def.type === 'literal') return { options: [], values: def.values ?? [] }
  return { options: [], values: [] }
}

/** The element schema of an array schema, if it is one. */
export function arrayElement(schema: unknown): unknown {
  const def = defOf(unwrap(schema))
  return def?.type === 'array' ? def.element : undefined
}

// ------------------------------------------------------------------------------------------------
// Secrets

/**
 * True when this schema itself (or one of its wrappers) is marked secret, with `secret()` or
 * `.meta({ secret: true })`.
 */
export function isSecretSchema(schema: unknown): boolean {
  let current = schema
  for (let i = 0; i < 64 && isZodSchema(current); i++) {
    if ((z.globalRegistry.get(current) as { secret?: unknown } | undefined)?.secret === true) return true
    const def = defOf(current) as Def
    if (WRAPPERS.has(def.type)) current = def.innerType
    else if (def.type === 'lazy' && def.getter) current = def.getter()
    else if (def.type === 'pipe') {
      if (isSecretSchema(def.out)) return true
      current = def.in
    } else return false
  }
  return false
}

/** True when `path`, or any object above it, is secret. */
export function isSecretPath(schema: unknown, path: readonly string[]): boolean {
  let current = schema
  if (isSecretSchema(current)) return true
  for (const key of path) {
    current = childSchema(current, key)
    if (current === undefined) return false
    if (isSecretSchema(current)) return true
  }
  return false
}

/** True when some field at or below this schema is secret (to know which objects need redacting). */
export function containsSecret(schema: unknown, seen = new Set<unknown>()): boolean {
  if (!isZodSchema(schema) || seen.has(schema)) return false
  seen.add(schema)
  if (isSecretSchema(schema)) return true
  const def = defOf(unwrap(schema))
  if (!def) return false
  const children: unknown[] = []
  if (def.shape) children.push(...Object.values(def.shape))
  if (def.catchall) children.push(def.catchall)
  if (def.valueType) children.push(def.valueType)
  if (def.element) children.push(def.element)
  if (def.items) children.push(...def.items)
  if (def.options) children.push(...def.options)
  if (def.left) children.push(def.left, def.right)
  return children.some((child) => containsSecret(child, seen))
}

export const REDACTED = '[redacted]'

/** A copy of `value` with every secret field replaced by `'[redacted]'`. */
export function redact(schema: unknown, value: unknown): unknown {
  if (value === undefined) return undefined
  if (isSecretSchema(schema)) return REDACTED
  if (Array.isArray(value)) return value.map((item, i) => redact(childSchema(schema, String(i)), item))
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) out[key] = redact(childSchema(schema, key), value[key])
    return out
  }
  return value
}

// ------------------------------------------------------------------------------------------------
// Defaults

/**
 * Adds an empty object for every required object field that no source set, so that zod fills in
 * the defaults of its fields: `{ payment: { timeoutMs: z.number().default(5000) } }` works with no
 * `payment` anywhere. Optional objects, and objects with a `.default()` of their own, are left to zod.
 * Mutates and returns `tree`.
 */
export function fillObjects(schema: unknown, tree: ConfigTree): ConfigTree {
  const def = defOf(unwrap(schema))
  if (def?.type !== 'object' || !def.shape) return tree
  for (const [key, field] of Object.entries(def.shape)) {
    const value = tree[key]
    if (value === undefined) {
      if (!requiresValue(field)) continue
      if (defOf(unwrap(field))?.type !== 'object') continue
      const created: ConfigTree = {}
      tree[key] = created
      fillObjects(field, created)
    } else if (isPlainObject(value)) {
      fillObjects(field, value)
    }
  }
  return tree
}

/** False for fields that accept `undefined` or supply their own value for it. */
function requiresValue(schema: unknown): boolean {
  let current = schema
  for (let i = 0; i < 64; i++) {
    const def = defOf(current)
    if (!def) return false
    if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'catch')
      return false
    if (def.type === 'nullable' || def.type === 'readonly' || def.type === 'nonoptional') current = def.innerType
    else if (def.type === 'lazy' && def.getter) current = def.getter()
    else if (def.type === 'pipe') current = def.in
    else return true
  }
  return true
}
