import { createHash, randomBytes } from 'node:crypto'

/** A stable id for an item declared in the config without one: the same declaration, the same id. */
export function configId(kind: string, ...parts: (string | undefined)[]): string {
  return `${kind}-${createHash('sha256')
    .update(parts.map((p) => p ?? '').join('\u0000'))
    .digest('hex')
    .slice(0, 12)}`
}

/** The id of an item added through the API without one. */
export function newId(kind: 'sub' | 'route'): string {
  return `${kind}_${randomBytes(9).toString('base64url')}`
}
