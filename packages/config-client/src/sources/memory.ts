import { ConfigError } from '../errors.js'
import { type ConfigTree, cloneTree, deleteAt, isPlainObject, setAt, splitPath } from '../tree.js'
import type { ConfigSource, SourceChangeInfo } from './types.js'

/** An in-memory source you change from code: for tests, and for values the app computes. */
export interface MemorySource extends ConfigSource {
  readonly name: string
  /** The current tree (a copy). */
  read(): ConfigTree
  /** Replaces the whole tree. */
  set(tree: ConfigTree): void
  /** Sets one value by dotted path: `put('payment.timeoutMs', 2500)`. */
  put(path: string, value: unknown): void
  /** Removes one value (or subtree) by dotted path. */
  delete(path: string): void
}

/** A source held in memory; every change is delivered like any other source's update. */
export function memory(initial: ConfigTree = {}, options: { name?: string } = {}): MemorySource {
  if (!isPlainObject(initial))
    throw new ConfigError('CONFIG_INVALID_OPTIONS', 'memory(initial): expected a plain object', {
      details: ['initial: expected a plain object'],
    })
  let tree = cloneTree(initial)
  const listeners = new Set<(tree: ConfigTree, info?: SourceChangeInfo) => void>()
  const notify = (keys: string[]) => {
    for (const listener of listeners) listener(cloneTree(tree), { keys })
  }
  return {
    name: options.name ?? 'memory',
    kind: 'memory',
    load: () => cloneTree(tree),
    watch(onChange) {
      listeners.add(onChange)
      return () => {
        listeners.delete(onChange)
      }
    },
    keyOf: (path) => path.join('.'),
    read: () => cloneTree(tree),
    set(next) {
      if (!isPlainObject(next))
        throw new ConfigError('CONFIG_INVALID_OPTIONS', 'memory.set(tree): expected a plain object')
      tree = cloneTree(next)
      notify(['*'])
    },
    put(path, value) {
      setAt(tree, splitPath(path), cloneTree(value))
      notify([path])
    },
    delete(path) {
      if (deleteAt(tree, splitPath(path))) notify([path])
    },
  }
}
