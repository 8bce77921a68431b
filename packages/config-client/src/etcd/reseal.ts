/**
 * Key rotation: every sealed value under a prefix sealed again with the ring's current key, written
 * only if none of those keys changed since it was read (no lost update). Clients whose ring holds
 * the old and the new key read both kinds meanwhile; once this is done the old key can be dropped.
 */
import { type Duration, durationSchema, withTimeout } from '@backplane/internal'
import type { Etcd3 } from 'etcd3'
import { z } from 'zod'
import { ConfigError, timedOut } from '../errors.js'
import { parseOptions } from '../options.js'
import { containsSecret, isSecretPath, isZodSchema, schemaAt } from '../schema.js'
import { isSealed, openValue, sealedKid, sealValue } from '../sealing/envelope.js'
import { type KeyRing, parseKeyRing } from '../sealing/key-ring.js'
import { type PrefixState, readPrefix } from './admin.js'
import { keyToPath } from './keys.js'

/** etcd allows 128 operations per transaction by default: one compare and one put per key. */
const KEYS_PER_TXN = 64
const ATTEMPTS = 5

const resealOptionsSchema = z.strictObject({
  /**
   * The app's schema: with it, values of `secret()` fields (or keys holding objects with secret
   * fields) that are still in clear are sealed too.
   */
  schema: z.custom<z.ZodType>(isZodSchema, { error: 'expected a zod 4 schema' }).optional(),
  /** Timeout of each etcd call (default 5 s). */
  timeout: durationSchema({ min: 1 }).default(5_000),
})

export interface ResealOptions {
  schema?: z.ZodType | undefined
  timeout?: Duration | undefined
}

export interface ResealResult {
  /** Keys whose sealed value was sealed again with the current key. */
  resealed: string[]
  /** Keys whose clear value was sealed (only with `schema`). */
  sealed: string[]
  /** etcd's revision after the last write (or of the read, when nothing needed writing). */
  revision: string
}

/** Whether a value at `path` should be stored sealed: the field is secret, or holds secret fields. */
export function needsSealing(schema: unknown, path: readonly string[]): boolean {
  return isSecretPath(schema, path) || containsSecret(schemaAt(schema, path))
}

/**
 * Seals again, with `ring.current`, every sealed value under `prefix` that another key sealed (and,
 * with `schema`, seals secret fields still in clear). Each transaction (up to 64 keys) compares
 * every key's mod revision with the one read; when another writer got there first, it reads again
 * and retries. Throws CONFIG_SEALED, writing nothing, when a value does not open with the ring.
 */
export async function resealPrefix(
  client: Etcd3,
  prefix: string,
  ring: KeyRing,
  options: ResealOptions = {},
): Promise<ResealResult> {
  const opts = parseOptions(resealOptionsSchema, options, 'resealPrefix')
  const timeoutMs = opts.timeout
  const keyRing = parseKeyRing(ring, 'resealPrefix: key ring')
  const result: ResealResult = { resealed: [], sealed: [], revision: '0' }
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const state = await readPrefix(client, prefix, timeoutMs)
    result.revision = state.revision
    const writes = plan(state, prefix, keyRing, opts.schema)
    if (writes.length === 0) return result
    let conflict = false
    for (let i = 0; i < writes.length; i += KEYS_PER_TXN) {
      const chunk = writes.slice(i, i + KEYS_PER_TXN)
      const res = await withTimeout(
        client.kv.txn({
          compare: chunk.map((w) => ({
            key: Buffer.from(w.key),
            target: 'Mod' as const,
            result: 'Equal' as const,
            mod_revision: w.modRevision,
          })),
          success: chunk.map((w) => ({ request_put: { key: Buffer.from(w.key), value: Buffer.from(w.value) } })),
        }),
        timeoutMs,
        () => timedOut(`etcd (resealing under ${prefix})`, timeoutMs),
      )
      if (!res.succeeded) {
        conflict = true
        break
      }
      result.revision = res.header.revision
      for (const w of chunk) (w.wasSealed ? result.resealed : result.sealed).push(w.key)
    }
    if (!conflict) return result
  }
  throw new ConfigError(
    'CONFIG_TIMEOUT',
    `resealing ${prefix}: other writers kept changing the keys; ${result.resealed.length + result.sealed.length} resealed, the rest not: run it again`,
  )
}

interface Write {
  key: string
  value: string
  modRevision: string
  wasSealed: boolean
}

function plan(state: PrefixState, prefix: string, ring: KeyRing, schema: unknown): Write[] {
  const current = new Map([...state.kvs].map(([key, { value }]) => [key, value]))
  return resealValues(current, prefix, ring, schema).map((w) => ({
    ...w,
    modRevision: state.kvs.get(w.key)?.modRevision ?? '0',
  }))
}

/**
 * The values to write so that every sealed value is sealed with `ring.current` (and, with
 * `schema`, every secret field held in clear is sealed), sorted by key. Throws CONFIG_SEALED,
 * before anything is written, when a value does not open with the ring.
 */
export function resealValues(
  kvs: ReadonlyMap<string, string>,
  prefix: string,
  ring: KeyRing,
  schema: unknown,
): { key: string; value: string; wasSealed: boolean }[] {
  const writes: { key: string; value: string; wasSealed: boolean }[] = []
  for (const [key, value] of [...kvs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (isSealed(value)) {
      if (sealedKid(value) === ring.current) continue
      // Opened first for every key: one that does not open stops the whole run before any write.
      writes.push({ key, value: sealValue(ring, key, openValue(ring, key, value)), wasSealed: true })
    } else if (schema !== undefined && needsSealing(schema, keyToPath(prefix, key))) {
      writes.push({ key, value: sealValue(ring, key, value), wasSealed: false })
    }
  }
  return writes
}
