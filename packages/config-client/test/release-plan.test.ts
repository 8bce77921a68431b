import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../src/errors.js'
import { applyChanges, diffKeys, flattenTree, storedText } from '../src/etcd/release-plan.js'
import { seqOf } from '../src/etcd/release-store.js'

const P = '/config/app/'

/** Applies a diff to `from`: what a release's changes do to the keys it was computed from. */
function patch(from: ReadonlyMap<string, string>, changes: ReturnType<typeof diffKeys>): Map<string, string> {
  const out = new Map(from)
  for (const c of changes) {
    if (c.next === undefined) out.delete(c.key)
    else out.set(c.key, c.next)
  }
  return out
}

const segment = fc
  .string({ minLength: 1, maxLength: 8, unit: 'grapheme' })
  .filter((s) => !s.includes('/') && !s.includes('.'))
const leaf = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.integer(),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 3 }),
)
const tree = fc.dictionary(segment, fc.oneof(leaf, fc.dictionary(segment, leaf, { maxKeys: 3 })), { maxKeys: 5 })
const keys = tree.map((t) => flattenTree(t, P))

describe('release plan', () => {
  it('set writes the one key at the path: text as given, anything else as JSON; keys under it stay', () => {
    const current = new Map([
      [`${P}payment/timeoutMs`, '100'],
      [`${P}payment/limits/max`, '5'],
      [`${P}payment/limits/min`, '1'],
      [`${P}service`, 'orders'],
    ])
    const next = applyChanges(current, P, { set: { 'payment.limits': { max: 9 }, service: 'billing', 'a.b': 7 } })
    expect(Object.fromEntries(next)).toEqual({
      [`${P}payment/timeoutMs`]: '100',
      [`${P}payment/limits/max`]: '5',
      [`${P}payment/limits/min`]: '1',
      [`${P}payment/limits`]: '{"max":9}',
      [`${P}service`]: 'billing',
      [`${P}a/b`]: '7',
    })
    expect(current.size).toBe(4) // untouched
  })

  it('delete removes the key at the path and every key under it, and nothing else', () => {
    const current = new Map([
      [`${P}payment/timeoutMs`, '100'],
      [`${P}payment/limits/max`, '5'],
      [`${P}paymentx`, 'kept'],
    ])
    expect([...applyChanges(current, P, { delete: ['payment'] }).keys()]).toEqual([`${P}paymentx`])
  })

  it('replace makes the keys exactly the leaves of the tree', () => {
    const current = new Map([[`${P}old`, 'x']])
    const next = applyChanges(current, P, { replace: { a: { b: 'text', c: [1, 2] }, d: true } })
    expect(Object.fromEntries(next)).toEqual({ [`${P}a/b`]: 'text', [`${P}a/c`]: '[1,2]', [`${P}d`]: 'true' })
  })

  it('refuses malformed changes with CONFIG_INVALID_OPTIONS saying what was expected', () => {
    const cases: [unknown, RegExp][] = [
      [{}, /nothing to publish/],
      [{ replace: {}, set: { a: 1 } }, /replace stands alone/],
      [{ set: { 'a..b': 1 } }, /expected a dotted path/],
      [{ set: { 'a/b': 1 } }, /without "\/"/],
      [{ delete: [''] }, /expected a dotted path/],
      [{ replace: [1] }, /expected a plain object/],
      [{ sett: {} }, /sett/],
    ]
    for (const [changes, message] of cases) {
      let error: unknown
      try {
        applyChanges(new Map(), P, changes as never)
      } catch (e) {
        error = e
      }
      expect(ConfigError.is(error) && error.code).toBe('CONFIG_INVALID_OPTIONS')
      expect((error as Error).message).toMatch(message)
    }
  })

  it('property: a diff applied to the keys it came from gives the new keys; no change gives no diff', () => {
    fc.assert(
      fc.property(keys, keys, (a, b) => {
        expect(patch(a, diffKeys(a, b))).toEqual(b)
        expect(diffKeys(a, a)).toEqual([])
        const changes = diffKeys(a, b)
        expect(changes.map((c) => c.key)).toEqual([...changes.map((c) => c.key)].sort())
      }),
    )
  })

  it('property: replace with any tree gives exactly its leaves, whatever was there; strings are stored verbatim', () => {
    fc.assert(
      fc.property(keys, tree, (current, t) => {
        const next = applyChanges(current, P, { replace: t })
        expect(next).toEqual(flattenTree(t, P))
        for (const [name, value] of Object.entries(t))
          if (typeof value === 'string') expect(next.get(`${P}${name}`)).toBe(value)
      }),
    )
  })

  it('property: set with arbitrary paths and values either applies or throws a typed error, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), fc.jsonValue({ maxDepth: 4 }), (path, value) => {
        try {
          const next = applyChanges(new Map(), P, { set: { [path]: value } })
          expect(next.get(`${P}${path.split('.').join('/')}`)).toBe(storedText(value))
        } catch (error) {
          expect(ConfigError.is(error) && error.code).toBe('CONFIG_INVALID_OPTIONS')
        }
      }),
    )
  })

  it('release ids are r followed by the sequence number', () => {
    expect(seqOf('r12')).toBe(12)
    for (const bad of ['r0', 'r012', '12', 'r-1', 'r1.5', 'R1', ' r1', 'r99999999999'])
      expect(seqOf(bad)).toBeUndefined()
  })
})
