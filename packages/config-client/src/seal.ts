/**
 * Turning a validated configuration into what `get()` serves: a private deep copy, frozen, whose
 * objects redact their secret fields when serialized (`JSON.stringify`, pino, `console.log`), so
 * that logging `config.get()` or a change event cannot leak a password.
 */
import { inspect } from 'node:util'
import { childSchema, containsSecret, redact } from './schema.js'
import { cloneTree, deepFreeze, isPlainObject } from './tree.js'

const secretBearing = new WeakMap<object, boolean>()

function hasSecret(schema: unknown): boolean {
  if (typeof schema !== 'object' || schema === null) return false
  let known = secretBearing.get(schema)
  if (known === undefined) {
    known = containsSecret(schema)
    secretBearing.set(schema, known)
  }
  return known
}

export function seal<T>(schema: unknown, value: T): T {
  // A copy: zod hands out `.default()` objects by reference, and those must not be frozen or tagged.
  const copy = cloneTree(value)
  protect(schema, copy)
  return deepFreeze(copy)
}

function protect(schema: unknown, value: unknown): void {
  if (!hasSecret(schema)) return
  if (Array.isArray(value)) {
    define(schema, value)
    value.forEach((item, i) => {
      protect(childSchema(schema, String(i)), item)
    })
  } else if (isPlainObject(value)) {
    define(schema, value)
    for (const key of Object.keys(value)) protect(childSchema(schema, key), value[key])
  }
}

function define(schema: unknown, target: object): void {
  // Non-enumerable: invisible to Object.keys, spreading, deep equality and iteration.
  Object.defineProperty(target, 'toJSON', { value: () => redact(schema, target) })
  Object.defineProperty(target, inspect.custom, {
    value: (_depth: number, options: object) => inspect(redact(schema, target), options),
  })
}
