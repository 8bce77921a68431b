import type { ChangeEvent, PathListener } from './config-types.js'
import { ConfigError } from './errors.js'
import { deepEqual, getAt, splitPath } from './tree.js'

/** The listeners of `config.watch(path, listener)`: each called only when the value at its path changed. */
export class PathWatchers<T> {
  readonly #watchers = new Set<{ path: string[]; listener: PathListener<unknown, T> }>()

  constructor(private readonly onListenerError: (error: unknown, event: string) => void) {}

  add(path: unknown, listener: unknown): () => void {
    if (typeof path !== 'string' || typeof listener !== 'function')
      throw new ConfigError('CONFIG_INVALID_OPTIONS', 'watch(path, listener): expected a dotted path and a function', {
        details: ['path: expected a string such as "payment.timeoutMs"', 'listener: expected a function'],
      })
    const entry = { path: splitPath(path), listener: listener as PathListener<unknown, T> }
    this.#watchers.add(entry)
    return () => {
      this.#watchers.delete(entry)
    }
  }

  notify(prev: unknown, next: unknown, event: ChangeEvent<T>): void {
    for (const watcher of [...this.#watchers]) {
      const before = getAt(prev, watcher.path)
      const after = getAt(next, watcher.path)
      if (deepEqual(before, after)) continue
      try {
        watcher.listener(after as never, before as never, event)
      } catch (error) {
        this.onListenerError(error, `watch('${watcher.path.join('.')}')`)
      }
    }
  }
}
