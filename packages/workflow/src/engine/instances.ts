/**
 * The instance cache and the per-instance serial lanes: every operation on one instance runs after
 * the earlier ones in this process, and reads the cached record its predecessor committed.
 */
import type { InstanceRecord } from '../store.js'
import type { EngineContext } from './context.js'

export interface Instances {
  /** Instance id → the record as last committed or loaded, least recently used first. */
  readonly cache: Map<string, InstanceRecord>
  /** Instance id → the tail of its queue of operations; absent when none is queued. */
  readonly lanes: Map<string, Promise<unknown>>
  /** Caches a record as the most recently used, evicting the oldest ones with nothing queued. */
  remember(record: InstanceRecord): void
  /** Loads from the store into the cache, and notes whether this engine owns it. */
  load(id: string): Promise<InstanceRecord | undefined>
  /** Runs `fn` after every earlier operation on the same instance (one at a time per instance in this process). */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T>
}

export function createInstances(ctx: EngineContext): Instances {
  const { store, owner, owned, opts } = ctx
  const cache = new Map<string, InstanceRecord>()
  const lanes = new Map<string, Promise<unknown>>()

  const remember = (record: InstanceRecord) => {
    cache.delete(record.id)
    cache.set(record.id, record)
    if (cache.size > opts.cacheSize) {
      for (const id of cache.keys()) {
        if (cache.size <= opts.cacheSize) break
        if (!lanes.has(id)) cache.delete(id)
        else break
      }
    }
  }

  const load = async (id: string): Promise<InstanceRecord | undefined> => {
    const stored = (await store.load(id)) as (InstanceRecord & { owner?: string | null }) | undefined
    if (!stored) {
      cache.delete(id)
      return undefined
    }
    const { owner: storedOwner, ...record } = stored
    if (storedOwner !== undefined) {
      if (storedOwner === owner) owned.add(id)
      else owned.delete(id)
    }
    remember(record)
    return record
  }

  const serial = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const previous = lanes.get(id)
    const run = previous ? previous.then(fn) : fn()
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    lanes.set(id, tail)
    tail.then(() => {
      if (lanes.get(id) === tail) lanes.delete(id)
    })
    return run
  }

  return { cache, lanes, remember, load, serial }
}
