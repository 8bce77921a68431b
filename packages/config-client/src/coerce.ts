/**
 * Strings from the environment and from etcd (where `etcdctl put` writes text) turned into what the
 * schema wants at that path: `"2500"` → 2500 for a number, `"true"` → true for a boolean, JSON for
 * objects and arrays. A string that cannot be converted is passed on unchanged, so that validation
 * rejects it with zod's message and the key it came from.
 */
import { arrayElement, choices, leafKind } from './schema.js'

const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

export function coerceString(schema: unknown, raw: string): unknown {
  switch (leafKind(schema)) {
    case 'string':
      return raw
    case 'number': {
      const trimmed = raw.trim()
      const n = Number(trimmed)
      return trimmed !== '' && !Number.isNaN(n) ? n : raw
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase()
      return TRUE.has(v) ? true : FALSE.has(v) ? false : raw
    }
    case 'bigint':
      try {
        return BigInt(raw.trim())
      } catch {
        return raw
      }
    case 'date': {
      const d = new Date(raw.trim())
      return Number.isNaN(d.getTime()) ? raw : d
    }
    case 'null':
      return raw.trim() === 'null' ? null : raw
    case 'json': {
      const parsed = parseJson(raw)
      if (parsed.ok) return parsed.value
      // A comma-separated list for arrays of scalars: APP_HOSTS=a,b,c
      const element = arrayElement(schema)
      if (element !== undefined && leafKind(element) !== 'json' && raw.trim() !== '')
        return raw.split(',').map((part) => coerceString(element, part.trim()))
      return raw
    }
    case 'choice': {
      const { options, values } = choices(schema)
      if (values.length > 0) {
        // An enum or literal: match the raw text against the allowed values' own text.
        const match = values.find((v) => String(v) === raw.trim())
        return match === undefined ? raw : match
      }
      // A union: the text as JSON when some member accepts that (so "1" is 1 in number | boolean),
      // else the first member that accepts its own coercion of the text.
      const accepts = (option: unknown, value: unknown) =>
        (option as { safeParse?: (v: unknown) => { success: boolean } }).safeParse?.(value).success === true
      const parsed = parseJson(raw)
      if (parsed.ok && options.some((option) => accepts(option, parsed.value))) return parsed.value
      for (const option of options) {
        const candidate = coerceString(option, raw)
        if (accepts(option, candidate)) return candidate
      }
      return raw
    }
    default: {
      // No schema here (an unknown key or z.unknown()): JSON when it is JSON, else the text.
      const parsed = parseJson(raw)
      return parsed.ok ? parsed.value : raw
    }
  }
}

function parseJson(raw: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(raw) }
  } catch {
    return { ok: false }
  }
}
