import { z } from 'zod'

/**
 * Marks a field as secret: its value is served normally by `get()`, but shown as `'[redacted]'` in
 * `toJSON()`, `JSON.stringify` of the served objects, `console.log`, change events, error messages
 * and logs. Same as `.meta({ secret: true })`, which also works.
 *
 * ```ts
 * const AppConfig = z.object({ db: z.object({ url: z.string(), password: secret(z.string().min(12)) }) })
 * ```
 */
export function secret<S extends z.ZodType>(schema: S): S {
  const meta = (z.globalRegistry.get(schema) ?? {}) as Record<string, unknown>
  return schema.meta({ ...meta, secret: true }) as S
}
