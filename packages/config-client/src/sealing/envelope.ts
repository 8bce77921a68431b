/**
 * One secret value sealed with AES-256-GCM, stored as one text value that says what it is:
 * `{"$sealed":1,"kid":"k2","iv":"<base64 12 bytes>","data":"<base64 ciphertext + 16-byte tag>"}`.
 * JSON, so `etcdctl get` shows a sealed value for what it is, and no plain configuration value is
 * an object with a `$sealed` member. The etcd key is the GCM additional data: an envelope copied to
 * another key does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { isPlainObject } from '../tree.js'
import type { KeyRing } from './key-ring.js'

const ALGORITHM = 'aes-256-gcm'
const IV_BYTES = 12
const TAG_BYTES = 16
// Domain separation: the additional data of this format version, not any other use of the keys.
const AAD_PREFIX = 'backplane-config/sealed/1\0'

const envelopeSchema = z.strictObject({
  $sealed: z.literal(1),
  kid: z.string().min(1),
  iv: z.base64().refine((iv) => Buffer.from(iv, 'base64').length === IV_BYTES, `expected ${IV_BYTES} bytes`),
  data: z.base64().refine((d) => Buffer.from(d, 'base64').length >= TAG_BYTES, 'expected ciphertext and tag'),
})

export type Envelope = z.output<typeof envelopeSchema>

/** The envelope object in `stored` (its text, or the object itself), without checking it; undefined if it is none. */
export function envelopeOf(stored: unknown): Record<string, unknown> | undefined {
  let value = stored
  if (typeof stored === 'string') {
    // Cheap test first: this runs for every value read from etcd.
    if (!stored.includes('"$sealed"') || stored.trimStart()[0] !== '{') return undefined
    try {
      value = JSON.parse(stored)
    } catch {
      return undefined
    }
  }
  return isPlainObject(value) && Object.hasOwn(value, '$sealed') ? value : undefined
}

/** True when `stored` is a sealed value (its text, or its object in a snapshot), well formed or not. */
export function isSealed(stored: unknown): boolean {
  return envelopeOf(stored) !== undefined
}

/** The id of the key a sealed value was sealed with (undefined when `stored` is not sealed). */
export function sealedKid(stored: unknown): string | undefined {
  const kid = envelopeOf(stored)?.kid
  return typeof kid === 'string' ? kid : undefined
}

function keyFor(ring: KeyRing, kid: string, key: string): Buffer {
  const secretKey = Object.hasOwn(ring.keys, kid) ? ring.keys[kid] : undefined
  if (secretKey === undefined)
    throw new ConfigError(
      'CONFIG_SEALED',
      `${key}: sealed with key "${kid}", which the key ring does not hold (it has ${Object.keys(ring.keys).join(', ') || 'no keys'})`,
      { keys: [key] },
    )
  if (secretKey.length !== 32)
    throw new ConfigError('CONFIG_INVALID_OPTIONS', `key ring: key "${kid}" is ${secretKey.length} bytes, expected 32`)
  return secretKey
}

function aad(key: string): Buffer {
  return Buffer.from(AAD_PREFIX + key, 'utf8')
}

/**
 * Seals `plaintext` (the text that would otherwise be stored, e.g. `sk_live_123` or `{"user":"a"}`)
 * for the etcd key `key` with the ring's current key. A fresh random IV each time.
 */
export function sealValue(ring: KeyRing, key: string, plaintext: string): string {
  const bytes = Buffer.from(plaintext, 'utf8')
  // Lone surrogates do not survive UTF-8: refuse them rather than open to something else.
  if (bytes.toString('utf8') !== plaintext)
    throw new ConfigError('CONFIG_INVALID_OPTIONS', `${key}: the value to seal is not well-formed Unicode text`)
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv(ALGORITHM, keyFor(ring, ring.current, key), iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad(key))
  const data = Buffer.concat([cipher.update(bytes), cipher.final(), cipher.getAuthTag()])
  const envelope: Envelope = { $sealed: 1, kid: ring.current, iv: iv.toString('base64'), data: data.toString('base64') }
  return JSON.stringify(envelope)
}

/**
 * The plaintext of a sealed value stored at `key`. Throws CONFIG_SEALED when it cannot be opened:
 * not an envelope, malformed, a key id the ring does not hold, or failed authentication (a wrong
 * key, an altered value, or one sealed for another key). The messages never show a value.
 */
export function openValue(ring: KeyRing, key: string, stored: unknown): string {
  const raw = envelopeOf(stored)
  if (raw === undefined) throw new ConfigError('CONFIG_SEALED', `${key}: not a sealed value`, { keys: [key] })
  const parsed = envelopeSchema.safeParse(raw)
  if (!parsed.success)
    throw new ConfigError(
      'CONFIG_SEALED',
      `${key}: malformed sealed value (expected {"$sealed":1,"kid","iv","data"}): ${parsed.error.issues
        .map((i) => `${i.path.join('.') || '(envelope)'}: ${i.message}`)
        .join('; ')}`,
      { keys: [key] },
    )
  const { kid, iv, data } = parsed.data
  const bytes = Buffer.from(data, 'base64')
  const decipher = createDecipheriv(ALGORITHM, keyFor(ring, kid, key), Buffer.from(iv, 'base64'), {
    authTagLength: TAG_BYTES,
  })
  decipher.setAAD(aad(key))
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
  try {
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    )
  } catch (error) {
    throw new ConfigError(
      'CONFIG_SEALED',
      `${key}: the sealed value does not open with key "${kid}": it was altered, sealed for another key, or the ring's "${kid}" is not the key it was sealed with`,
      { keys: [key], cause: error },
    )
  }
}
