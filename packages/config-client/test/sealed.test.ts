import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { buildTree } from '../src/etcd/keys.js'
import { needsSealing } from '../src/etcd/reseal.js'
import {
  ConfigError,
  formatKeyRing,
  generateKey,
  isSealed,
  type KeyRing,
  loadKeyRing,
  openValue,
  parseKeyRing,
  sealValue,
  secret,
} from '../src/index.js'
import { SealedTrees } from '../src/sealing/sealed-trees.js'
import { recordingLogger } from './helpers/config.js'

const k1 = generateKey()
const k2 = generateKey()
const ring: KeyRing = parseKeyRing({ current: 'k1', keys: { k1 } })
const ring12: KeyRing = parseKeyRing({ current: 'k2', keys: { k1, k2 } })
const KEY = '/config/orders/payment/apiKey'
const dir = mkdtempSync(join(tmpdir(), 'config-client-sealed-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(() => {
  delete process.env.TEST_SEALED_KEYS
})

function sealedError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (error) {
    expect(ConfigError.is(error)).toBe(true)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

/** The envelope with one byte of its base64 field `field` flipped. */
function tampered(stored: string, field: 'iv' | 'data', byte = 0): string {
  const envelope = JSON.parse(stored)
  const bytes = Buffer.from(envelope[field], 'base64')
  bytes[byte] = (bytes[byte] as number) ^ 0x01
  return JSON.stringify({ ...envelope, [field]: bytes.toString('base64') })
}

describe('sealValue / openValue', () => {
  it('round trips, as JSON that says what it is and does not contain the plaintext', () => {
    const stored = sealValue(ring, KEY, 'sk_live_123')
    const envelope = JSON.parse(stored)
    expect(Object.keys(envelope)).toEqual(['$sealed', 'kid', 'iv', 'data'])
    expect(envelope.$sealed).toBe(1)
    expect(envelope.kid).toBe('k1')
    expect(Buffer.from(envelope.iv, 'base64')).toHaveLength(12)
    expect(Buffer.from(envelope.data, 'base64')).toHaveLength('sk_live_123'.length + 16)
    expect(stored).not.toContain('sk_live_123')
    expect(isSealed(stored)).toBe(true)
    expect(openValue(ring, KEY, stored)).toBe('sk_live_123')
    // A fresh IV each time: the same value seals differently.
    expect(sealValue(ring, KEY, 'sk_live_123')).not.toBe(stored)
  })

  it('isSealed is true only for envelopes', () => {
    for (const plain of ['sk_live_123', '2500', '{"a":1}', '"$sealed"', '[{"$sealed":1}]', '', 'null'])
      expect(isSealed(plain)).toBe(false)
    expect(isSealed('{"$sealed":1}')).toBe(true) // malformed, but an envelope: opening it fails loudly
    expect(isSealed({ $sealed: 1, kid: 'k1', iv: '', data: '' })).toBe(true)
  })

  it('detects tampering: a flipped byte of the ciphertext, the tag or the IV is a CONFIG_SEALED error', () => {
    const stored = sealValue(ring, KEY, 'sk_live_123')
    const length = Buffer.from(JSON.parse(stored).data, 'base64').length
    for (const altered of [tampered(stored, 'data', 0), tampered(stored, 'data', length - 1), tampered(stored, 'iv')]) {
      const error = sealedError(() => openValue(ring, KEY, altered))
      expect(error.code).toBe('CONFIG_SEALED')
      expect(error.message).toContain('does not open with key "k1"')
      expect(error.message).not.toContain('sk_live_123')
    }
  })

  it('a wrong key or an unknown kid is a CONFIG_SEALED error', () => {
    const stored = sealValue(ring, KEY, 'sk_live_123')
    const otherKeySameKid = parseKeyRing({ current: 'k1', keys: { k1: k2 } })
    expect(sealedError(() => openValue(otherKeySameKid, KEY, stored)).code).toBe('CONFIG_SEALED')
    const withoutK1 = parseKeyRing({ current: 'k2', keys: { k2 } })
    const error = sealedError(() => openValue(withoutK1, KEY, stored))
    expect(error.code).toBe('CONFIG_SEALED')
    expect(error.message).toBe(`${KEY}: sealed with key "k1", which the key ring does not hold (it has k2)`)
    // Relabelling the envelope with another kid of the ring does not open it either.
    const relabelled = JSON.stringify({ ...JSON.parse(stored), kid: 'k2' })
    expect(sealedError(() => openValue(ring12, KEY, relabelled)).code).toBe('CONFIG_SEALED')
  })

  it('binds the value to its key: an envelope copied to another key does not open', () => {
    const stored = sealValue(ring, KEY, 'sk_live_123')
    expect(sealedError(() => openValue(ring, '/config/orders/payment/other', stored)).code).toBe('CONFIG_SEALED')
    expect(sealedError(() => openValue(ring, '/config/billing/payment/apiKey', stored)).code).toBe('CONFIG_SEALED')
    expect(openValue(ring, KEY, stored)).toBe('sk_live_123')
  })

  it('malformed envelopes and plain values are CONFIG_SEALED errors naming the problem', () => {
    const stored = JSON.parse(sealValue(ring, KEY, 'x'))
    const cases: [unknown, string][] = [
      ['{"$sealed":1}', 'malformed sealed value'],
      [JSON.stringify({ ...stored, $sealed: 2 }), '$sealed'],
      [JSON.stringify({ ...stored, iv: 'not base64!' }), 'iv'],
      [JSON.stringify({ ...stored, data: 'AAAA' }), 'data'],
      [JSON.stringify({ ...stored, extra: 1 }), 'extra'],
      ['sk_live_123', 'not a sealed value'],
    ]
    for (const [value, fragment] of cases) {
      const error = sealedError(() => openValue(ring, KEY, value))
      expect(error.code).toBe('CONFIG_SEALED')
      expect(error.message).toContain(fragment)
    }
  })

  it('refuses text that UTF-8 cannot carry (a lone surrogate)', () => {
    expect(sealedError(() => sealValue(ring, KEY, 'a\ud800b')).code).toBe('CONFIG_INVALID_OPTIONS')
  })

  it('property: any Unicode text (control characters, astral planes, long) round trips for any key', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'binary', minLength: 2_000, maxLength: 20_000 }),
          fc.string({ unit: fc.constantFrom('\u0000', '\n', '\u001b', '\u007f', '"', '\\', '{', '\u2028') }),
        ),
        fc.string({ unit: 'binary', minLength: 1 }),
        (plaintext, key) => {
          const stored = sealValue(ring12, key, plaintext)
          expect(isSealed(stored)).toBe(true)
          expect(openValue(ring12, key, stored)).toBe(plaintext)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('key rings', () => {
  it('parses the JSON form and the Buffer form, and formats back to what it reads', () => {
    const fromJson = parseKeyRing(JSON.stringify({ current: 'k2', keys: { k1, k2 } }))
    expect(fromJson.current).toBe('k2')
    expect(fromJson.keys.k1).toEqual(Buffer.from(k1, 'base64'))
    const fromBuffers = parseKeyRing({ current: 'k1', keys: { k1: Buffer.from(k1, 'base64') } })
    expect(fromBuffers.keys.k1).toEqual(Buffer.from(k1, 'base64'))
    expect(parseKeyRing(formatKeyRing(fromJson))).toEqual(fromJson)
    expect(Buffer.from(generateKey(), 'base64')).toHaveLength(32)
    expect(generateKey()).not.toBe(generateKey())
  })

  it('rejects a wrong length, an unknown current kid, malformed base64 and bad JSON with clear messages', () => {
    const cases: [unknown, string][] = [
      [
        { current: 'k1', keys: { k1: Buffer.alloc(16).toString('base64') } },
        'keys.k1: expected 32 bytes (44 base64 characters), got 16 bytes',
      ],
      [{ current: 'k3', keys: { k1, k2 } }, 'current: current key "k3" is not among the keys (k1, k2)'],
      [{ current: 'k1', keys: { k1: `${k1.slice(0, 40)}$$$=` } }, 'keys.k1: expected standard base64'],
      [{ current: 'k1', keys: { k1: Buffer.alloc(31) } }, 'keys.k1: expected 32 bytes'],
      [{ current: 'k 1', keys: { 'k 1': k1 } }, 'expected a key id'],
      [{ current: 'k1', keys: { k1 }, extra: true }, 'unknown option(s) "extra"'],
      ['{"current":', 'is not valid JSON'],
    ]
    for (const [input, fragment] of cases) {
      const error = sealedError(() => parseKeyRing(input, 'the ring'))
      expect(error.code).toBe('CONFIG_INVALID_OPTIONS')
      expect(error.message).toContain(fragment)
      expect(error.message).not.toContain(k1)
    }
  })

  it('loads from a file, from an environment variable holding JSON or a path, and says when there is none', () => {
    const file = join(dir, 'keys.json')
    writeFileSync(file, JSON.stringify({ current: 'k1', keys: { k1 } }))
    expect(loadKeyRing({ file }).current).toBe('k1')
    process.env.TEST_SEALED_KEYS = JSON.stringify({ current: 'k2', keys: { k1, k2 } })
    expect(loadKeyRing({ env: 'TEST_SEALED_KEYS' }).current).toBe('k2')
    process.env.TEST_SEALED_KEYS = file
    expect(loadKeyRing({ env: 'TEST_SEALED_KEYS' }).current).toBe('k1')
    delete process.env.TEST_SEALED_KEYS
    expect(sealedError(() => loadKeyRing({ env: 'TEST_SEALED_KEYS' })).message).toContain(
      'no key ring: TEST_SEALED_KEYS is not set',
    )
    const missing = sealedError(() => loadKeyRing({ file: join(dir, 'nope.json') }))
    expect(missing.code).toBe('CONFIG_INVALID_OPTIONS')
    expect(missing.message).toContain('cannot read the key ring file')
  })
})

describe('trees with sealed values', () => {
  const Schema = z.object({
    payment: z.object({
      timeoutMs: z.number().default(5000),
      apiKey: secret(z.string()).optional(),
      pin: secret(z.number()).optional(),
    }),
    db: secret(z.object({ user: z.string(), password: z.string(), host: z.string().optional() })).optional(),
    region: z.string().optional(),
  })
  const prefix = '/config/orders/'
  const kvs = () =>
    new Map([
      [`${prefix}payment/timeoutMs`, '2500'],
      [`${prefix}payment/apiKey`, sealValue(ring, `${prefix}payment/apiKey`, 'sk_live_123')],
      [`${prefix}payment/pin`, sealValue(ring, `${prefix}payment/pin`, '4242')],
      [`${prefix}db`, sealValue(ring, `${prefix}db`, '{"user":"app","password":"hunter22"}')],
      [`${prefix}db/host`, 'db.internal'],
    ])

  it('opens sealed values and decodes them as the schema wants; the sealed form holds no plaintext and restores the same tree', () => {
    const { logger, lines } = recordingLogger()
    const trees = new SealedTrees(prefix, ring, () => logger)
    const tree = trees.build(kvs(), Schema)
    const expected = {
      payment: { timeoutMs: 2500, apiKey: 'sk_live_123', pin: 4242 },
      db: { user: 'app', password: 'hunter22', host: 'db.internal' },
    }
    expect(tree).toEqual(expected)
    const stored = trees.sealedForm(tree)
    const text = JSON.stringify(stored)
    for (const secretText of ['sk_live_123', '4242', 'hunter22']) expect(text).not.toContain(secretText)
    expect(stored).toMatchObject({ payment: { timeoutMs: 2500 }, db: { host: 'db.internal' } })
    expect(isSealed((stored as { payment: { apiKey: unknown } }).payment.apiKey)).toBe(true)
    // Read back (as from the snapshot file) by a fresh source with the ring: the same tree.
    const again = new SealedTrees(prefix, ring12, () => logger)
    const restored = again.restore(JSON.parse(text), Schema)
    expect(restored).toEqual(expected)
    expect(again.sealedForm(restored)).toEqual(JSON.parse(text))
    expect(lines).toEqual([]) // every sealed value is on a secret field: no warning
  })

  it('without an onSealed handler buildTree decodes envelopes as text, as before', () => {
    const tree = buildTree(kvs(), prefix, Schema)
    expect(isSealed((tree as { payment: { apiKey: string } }).payment.apiKey)).toBe(true)
  })

  it('a value that does not open, or no ring at all, is a CONFIG_SEALED error, never the envelope as a value', () => {
    const trees = new SealedTrees(prefix, parseKeyRing({ current: 'k2', keys: { k2 } }), () => recordingLogger().logger)
    const error = sealedError(() => trees.build(kvs(), Schema))
    expect(error.code).toBe('CONFIG_SEALED')
    expect(error.keys).toEqual([`${prefix}db`])
    const none = sealedError(() =>
      new SealedTrees(prefix, undefined, () => recordingLogger().logger).build(kvs(), Schema),
    )
    expect(none.message).toContain('no key ring is configured: pass keys to etcd() or set BACKPLANE_CONFIG_KEYS')
  })

  it('opens a sealed value on a field that is not secret() and warns once per key', () => {
    const { logger, lines } = recordingLogger()
    const trees = new SealedTrees(prefix, ring, () => logger)
    const map = new Map([[`${prefix}region`, sealValue(ring, `${prefix}region`, 'eu-west-1')]])
    expect(trees.build(map, Schema)).toEqual({ region: 'eu-west-1' })
    trees.build(map, Schema)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('a sealed value on a field that is not secret()')
    expect(lines[0]).toContain(`${prefix}region`)
    expect(lines[0]).not.toContain('eu-west-1')
  })

  it('needsSealing: secret fields, and objects that hold secret fields', () => {
    expect(needsSealing(Schema, ['payment', 'apiKey'])).toBe(true)
    expect(needsSealing(Schema, ['payment'])).toBe(true)
    expect(needsSealing(Schema, ['db', 'host'])).toBe(true)
    expect(needsSealing(Schema, ['payment', 'timeoutMs'])).toBe(false)
    expect(needsSealing(Schema, ['region'])).toBe(false)
  })
})
