/**
 * The etcd source's trees when some keys hold sealed values: built with the values opened (what
 * the config validates and serves), and kept in a second form with those values still sealed, for
 * the snapshot. A start from the snapshot opens them again with the key ring.
 *
 * In the sealed form the value of a sealed key is `{ "$sealed": "<envelope text>" }` at its path,
 * with any deeper keys merged into that object as buildTree merges them into the opened value, so
 * the opened tree can be rebuilt from it exactly (and the envelope's etcd key recovered from the
 * path, as the additional data needs).
 */
import { ConfigError } from '../errors.js'
import { buildTree, decodeValue, pathToKey } from '../etcd/keys.js'
import { type ConfigLogger, safeLog } from '../logger.js'
import { containsSecret, isSecretPath, schemaAt } from '../schema.js'
import { type ConfigTree, isPlainObject, mergeTrees } from '../tree.js'
import { isSealed, openValue } from './envelope.js'
import { KEYS_ENV, type KeyRing } from './key-ring.js'

export class SealedTrees {
  readonly #prefix: string
  readonly #ring: KeyRing | undefined
  readonly #logger: () => ConfigLogger
  // Opened tree → its sealed form; only trees that hold sealed values are here.
  readonly #sealedForm = new WeakMap<ConfigTree, ConfigTree>()
  readonly #warned = new Set<string>()

  constructor(prefix: string, ring: KeyRing | undefined, logger: () => ConfigLogger) {
    this.#prefix = prefix
    this.#ring = ring
    this.#logger = logger
  }

  /** The tree of the keys, sealed values opened. Throws CONFIG_SEALED when one does not open. */
  build(kvs: ReadonlyMap<string, string>, schema: unknown): ConfigTree {
    let sealed = false
    const tree = buildTree(kvs, this.#prefix, schema, (key, stored, path) => {
      sealed = true
      return this.#open(key, stored, path, schema)
    })
    if (sealed)
      this.#sealedForm.set(
        tree,
        buildTree(kvs, this.#prefix, schema, (_key, stored) => ({ $sealed: stored })),
      )
    return tree
  }

  /** What the snapshot keeps of a tree that `build` or `restore` returned: sealed values still sealed. */
  sealedForm(tree: ConfigTree): ConfigTree {
    return this.#sealedForm.get(tree) ?? tree
  }

  /** The opened tree of a sealed form read from the snapshot. Throws CONFIG_SEALED when a value does not open. */
  restore(stored: ConfigTree, schema: unknown): ConfigTree {
    let sealed = false
    const walk = (node: unknown, path: string[]): unknown => {
      if (!isPlainObject(node)) return node
      const children = (object: Record<string, unknown>) =>
        Object.fromEntries(Object.entries(object).map(([k, v]) => [k, walk(v, [...path, k])]))
      if (!Object.hasOwn(node, '$sealed')) return children(node)
      sealed = true
      const { $sealed: envelope, ...deeper } = node
      const key = pathToKey(this.#prefix, path)
      const opened = this.#open(key, envelope, path, schema)
      if (Object.keys(deeper).length === 0) return opened
      return isPlainObject(opened) ? mergeTrees([opened, children(deeper)]) : children(deeper)
    }
    const tree = walk(stored, []) as ConfigTree
    if (sealed) this.#sealedForm.set(tree, stored)
    return tree
  }

  #open(key: string, stored: unknown, path: readonly string[], schema: unknown): unknown {
    if (this.#ring === undefined)
      throw new ConfigError(
        'CONFIG_SEALED',
        `${key}: holds a sealed value but no key ring is configured: pass keys to etcd() or set ${KEYS_ENV}`,
        { keys: [key] },
      )
    const text = openValue(this.#ring, key, stored)
    if (isSealed(text))
      throw new ConfigError('CONFIG_SEALED', `${key}: a sealed value that holds another sealed value`, { keys: [key] })
    if (!isSecretPath(schema, path) && !containsSecret(schemaAt(schema, path)) && !this.#warned.has(key)) {
      this.#warned.add(key)
      safeLog(
        this.#logger(),
        'warn',
        { key, path: path.join('.') },
        'a sealed value on a field that is not secret(): it is opened and used, but its clear value shows in change events and logs; mark the field secret()',
      )
    }
    return decodeValue(schemaAt(schema, path), text)
  }
}
