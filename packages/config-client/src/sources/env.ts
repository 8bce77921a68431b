import { z } from 'zod'
import { coerceString } from '../coerce.js'
import { parseOptions } from '../options.js'
import { childSchema, declaredKeys } from '../schema.js'
import { type ConfigTree, setAt } from '../tree.js'
import type { ConfigSource } from './types.js'

const envOptionsSchema = z.strictObject({
  /** Only variables starting with this are read; it is cut off (`APP_`). */
  prefix: z.string().min(1, 'expected a prefix such as "APP_"'),
  /** Separates nesting levels (`APP_PAYMENT__TIMEOUT_MS` → `payment.timeoutMs`). */
  separator: z.string().min(1).default('__'),
  /** Where to read from (default `process.env`, read at load). */
  env: z.record(z.string(), z.string().optional()).optional(),
  /** Name in events and the snapshot (default `env:<prefix>`). */
  name: z.string().min(1).optional(),
})

export type EnvSourceOptions = z.input<typeof envOptionsSchema>

const normalize = (key: string) => key.toLowerCase().replace(/[_-]/g, '')
const camel = (segment: string) => segment.toLowerCase().replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/**
 * Environment variables under a prefix. Each part between separators is matched to the schema's key
 * at that level ignoring case and underscores (`TIMEOUT_MS` matches `timeoutMs` and `timeout_ms`),
 * or camel-cased where the schema has no fixed keys (records). Values are coerced to the schema's
 * type at that path: numbers, booleans (`true/false/1/0/yes/no/on/off`), bigints, dates, enums, and
 * JSON (or a comma-separated list for arrays of scalars). Variables that match no path of the
 * schema are ignored (logged at debug level). Read once, at start.
 */
export function env(options: EnvSourceOptions): ConfigSource {
  const opts = parseOptions(envOptionsSchema, options, 'env source')
  const name = opts.name ?? `env:${opts.prefix}`
  const origins = new Map<string, string>()

  return {
    name,
    kind: 'env',
    keyOf: (path) => {
      for (let i = path.length; i > 0; i--) {
        const origin = origins.get(path.slice(0, i).join('.'))
        if (origin !== undefined) return origin
      }
      return undefined
    },
    load(context) {
      const vars = opts.env ?? process.env
      const tree: ConfigTree = {}
      origins.clear()
      // Sorted, so that APP_A (a whole object as JSON) comes before APP_A__B, which then wins.
      for (const variable of Object.keys(vars).sort()) {
        const raw = vars[variable]
        if (raw === undefined || !variable.startsWith(opts.prefix)) continue
        const parts = variable.slice(opts.prefix.length).split(opts.separator)
        if (parts.some((part) => part === '')) continue
        let schema: unknown = context.schema
        const path: string[] = []
        for (const part of parts) {
          const wanted = normalize(part)
          const key = declaredKeys(schema).find((k) => normalize(k) === wanted) ?? camel(part)
          path.push(key)
          schema = childSchema(schema, key)
          if (schema === undefined) break
        }
        if (schema === undefined) {
          // Not a key of the schema: other programs' variables may share the prefix.
          context.logger.debug({ source: name, variable }, 'environment variable matches no config path: ignored')
          continue
        }
        setAt(tree, path, coerceString(schema, raw))
        origins.set(path.join('.'), variable)
      }
      return tree
    },
  }
}
