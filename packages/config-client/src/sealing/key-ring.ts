/**
 * The key ring that seals and opens secret values: AES-256 keys by id, one of them current (the one
 * new values are sealed with). Every key stays usable for opening, so a ring holding the old and
 * the new key reads values sealed with either while a prefix is being resealed.
 *
 * File (or `BACKPLANE_CONFIG_KEYS`) format: `{"current":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}`,
 * each key 32 random bytes in standard base64 (44 characters).
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { issueLines } from '@backplane/internal'
import { z } from 'zod'
import { ConfigError, messageOf } from '../errors.js'

/** The environment variable read when no key ring is given: the ring's JSON, or the path of its file. */
export const KEYS_ENV = 'BACKPLANE_CONFIG_KEYS'

export const KEY_BYTES = 32

export interface KeyRing {
  /** Id of the key new values are sealed with. */
  readonly current: string
  /** Every key by id (32 bytes each): all of them open values. */
  readonly keys: Readonly<Record<string, Buffer>>
}

const kidSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected a key id of 1-64 letters, digits, ".", "_" or "-"' })

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

// A key as the file has it (base64) or as code may pass it (a Buffer); the message never shows it.
const keySchema = z.unknown().transform((value, ctx) => {
  let key: Buffer
  if (typeof value === 'string') {
    if (!BASE64.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected standard base64 (A-Z a-z 0-9 + /, = padding)' })
      return z.NEVER
    }
    key = Buffer.from(value, 'base64')
  } else if (value instanceof Uint8Array) key = Buffer.from(value)
  else {
    ctx.addIssue({ code: 'custom', message: 'expected a base64 string (or a Buffer)' })
    return z.NEVER
  }
  if (key.length !== KEY_BYTES) {
    ctx.addIssue({
      code: 'custom',
      message: `expected ${KEY_BYTES} bytes (44 base64 characters), got ${key.length} bytes`,
    })
    return z.NEVER
  }
  return key
})

const keyRingSchema = z
  .strictObject({
    current: kidSchema,
    keys: z.record(kidSchema, keySchema),
  })
  .refine((ring) => Object.hasOwn(ring.keys, ring.current), {
    error: (issue) => {
      const ring = issue.input as { current: string; keys: object }
      return `current key "${ring.current}" is not among the keys (${Object.keys(ring.keys).join(', ') || 'none'})`
    },
    path: ['current'],
  })

/**
 * A validated key ring from its JSON text, its parsed JSON (keys in base64) or an object with
 * Buffers. Throws CONFIG_INVALID_OPTIONS saying what is wrong (never showing a key).
 */
export function parseKeyRing(input: unknown, where = 'key ring'): KeyRing {
  let value = input
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input)
    } catch (error) {
      throw new ConfigError('CONFIG_INVALID_OPTIONS', `${where} is not valid JSON: ${messageOf(error)}`, {
        details: [`expected JSON like {"current":"k1","keys":{"k1":"<base64 of ${KEY_BYTES} bytes>"}}`],
      })
    }
  }
  const result = keyRingSchema.safeParse(value)
  if (!result.success) {
    const details = issueLines(result.error.issues, '(key ring)')
    throw new ConfigError('CONFIG_INVALID_OPTIONS', `${where} is invalid: ${details.join('; ')}`, { details })
  }
  return Object.freeze({ current: result.data.current, keys: Object.freeze({ ...result.data.keys }) })
}

export interface LoadKeyRingOptions {
  /** Path of a key ring file. Wins over `env`. */
  file?: string | undefined
  /** Name of the environment variable holding the ring's JSON or its file path (default `BACKPLANE_CONFIG_KEYS`). */
  env?: string | undefined
}

/** The key ring from a file, or from an environment variable (JSON, or a file path). Throws when there is none. */
export function loadKeyRing(options: LoadKeyRingOptions = {}): KeyRing {
  if (options.file !== undefined) return readKeyRingFile(options.file)
  const variable = options.env ?? KEYS_ENV
  const ring = keyRingFromEnvironment(variable)
  if (ring === undefined)
    throw new ConfigError('CONFIG_INVALID_OPTIONS', `no key ring: ${variable} is not set and no file was given`, {
      details: [`set ${variable} to the key ring's JSON or the path of its file`],
    })
  return ring
}

/** The ring named by an environment variable; undefined when it is unset or empty. */
export function keyRingFromEnvironment(variable = KEYS_ENV): KeyRing | undefined {
  const value = process.env[variable]?.trim()
  if (!value) return undefined
  return value.startsWith('{') ? parseKeyRing(value, `the key ring in ${variable}`) : readKeyRingFile(value)
}

function readKeyRingFile(path: string): KeyRing {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError('CONFIG_INVALID_OPTIONS', `cannot read the key ring file ${path}: ${messageOf(error)}`, {
      cause: error,
    })
  }
  return parseKeyRing(text, `the key ring file ${path}`)
}

/** A new random key, base64 (what a key ring file holds). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/** The file form of a ring (JSON, keys in base64): what `loadKeyRing` reads back. Holds the keys: write it 0600. */
export function formatKeyRing(ring: KeyRing): string {
  const keys = Object.fromEntries(Object.entries(ring.keys).map(([kid, key]) => [kid, key.toString('base64')]))
  return `${JSON.stringify({ current: ring.current, keys }, null, 2)}\n`
}

/** The `keys` option of the etcd source and `releases()`: a key ring, or the path of its file. */
export const keysOptionSchema = z
  .union([
    z.string().min(1),
    z.custom<KeyRing>((v) => typeof v === 'object' && v !== null, { error: 'expected a key ring or a file path' }),
  ])
  .optional()

/** The ring a `keys` option names; without one, BACKPLANE_CONFIG_KEYS (undefined if unset). */
export function ringFromOption(keys: string | KeyRing | undefined, where: string): KeyRing | undefined {
  if (keys === undefined) return keyRingFromEnvironment()
  return typeof keys === 'string' ? loadKeyRing({ file: keys }) : parseKeyRing(keys, `${where}: keys`)
}
