import { LRUCache } from 'lru-cache'

/**
 * Remembers which messages a consumer group has handled. The core asks `has` before running the
 * handler and calls `add` once it succeeded, so a failed attempt can still be retried. Implement
 * it over Redis, a SQL table, etc. to de-duplicate across processes.
 */
export interface DedupeStore {
  has(key: string): boolean | Promise<boolean>
  add(key: string, ttlMs: number): void | Promise<void>
}

/** An in-process LRU with a time to live: duplicates are caught within one process. */
export function memoryDedupeStore(options: { max?: number } = {}): DedupeStore {
  const seen = new LRUCache<string, true>({ max: options.max ?? 100_000, ttlAutopurge: false })
  return {
    has: (key) => seen.has(key),
    add: (key, ttlMs) => {
      seen.set(key, true, { ttl: ttlMs })
    },
  }
}
