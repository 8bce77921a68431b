import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { BridgeError } from './errors.js'
import type { Filter } from './filter.js'

/** A webhook subscription as it is kept. */
export interface StoredSubscription {
  id: string
  topic: string
  url: string
  group?: string | undefined
  secret?: string | undefined
  maxAttempts?: number | undefined
  filter?: Filter | undefined
  deadLetter?: string | false | undefined
  concurrency?: number | undefined
  /** Breaker settings of its own (ms); the bridge's `webhooks.breaker` for the others. */
  breaker?:
    | { failures?: number | undefined; schedule?: number[] | undefined; disableAfter?: number | undefined }
    | undefined
  createdAt: string
  /** Set on the copy of a subscription declared in the config (kept for its `createdAt`). */
  origin?: 'config' | undefined
  /** Disabled by its breaker (no success for `disableAfter`) until `POST /v1/subscriptions/{id}/enable`. */
  disabled?: { at: string; reason: string } | undefined
}

export interface StoredRoute {
  id: string
  source: string
  destinations: string[]
  filter?: Filter | undefined
  maxAttempts?: number | undefined
  deadLetter?: string | false | undefined
  createdAt: string
  origin?: 'config' | undefined
}

export interface BridgeState {
  subscriptions: StoredSubscription[]
  routes: StoredRoute[]
}

export type StoreKind = 'subscription' | 'route'

/** A change made by someone else (another bridge sharing the store). */
export type StoreChange =
  | { kind: 'subscription'; id: string; item: StoredSubscription | undefined }
  | { kind: 'route'; id: string; item: StoredRoute | undefined }

/**
 * Where the subscriptions and routes added at run time are kept. The file store is the default;
 * the etcd store (`@backplane/messaging/bridge`'s `etcdStore`) is shared by several bridges.
 */
export interface BridgeStore {
  load(): Promise<BridgeState>
  put(kind: 'subscription', item: StoredSubscription): Promise<void>
  put(kind: 'route', item: StoredRoute): Promise<void>
  delete(kind: StoreKind, id: string): Promise<void>
  /** Changes made by other processes, for stores shared between bridges. */
  watch?(listener: (change: StoreChange) => void): void
  close(): Promise<void>
}

function emptyState(): BridgeState {
  return { subscriptions: [], routes: [] }
}

function listOf(state: BridgeState, kind: StoreKind): { id: string }[] {
  return kind === 'subscription' ? state.subscriptions : state.routes
}

/** Keeps nothing: what is added at run time is gone after a restart (`store: false`). */
export function memoryStore(): BridgeStore {
  const state = emptyState()
  return {
    async load() {
      return structuredClone(state)
    },
    async put(kind: StoreKind, item: StoredSubscription | StoredRoute) {
      const list = listOf(state, kind)
      const at = list.findIndex((i) => i.id === item.id)
      if (at === -1) list.push(structuredClone(item))
      else list[at] = structuredClone(item)
    },
    async delete(kind, id) {
      const list = listOf(state, kind)
      const at = list.findIndex((i) => i.id === id)
      if (at !== -1) list.splice(at, 1)
    },
    async close() {},
  }
}

/**
 * One JSON file, rewritten whole on each change: written to a temporary file beside it, flushed
 * to disk, then renamed over the old one, so a crash leaves the old or the new state, never half
 * of one. Mode 0600: it holds webhook secrets. Changes are written one at a time, in order.
 */
export function fileStore(path: string): BridgeStore {
  const file = resolve(path)
  let state = emptyState()
  let writing: Promise<void> = Promise.resolve()

  async function write(): Promise<void> {
    const text = `${JSON.stringify({ version: 1, ...state }, null, 2)}\n`
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    await mkdir(dirname(file), { recursive: true })
    const handle = await open(temporary, 'wx', 0o600)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await rename(temporary, file)
    } catch (error) {
      await rm(temporary, { force: true })
      throw error
    }
    // The rename itself is durable once the directory is flushed (not possible on every platform).
    try {
      const directory = await open(dirname(file), 'r')
      try {
        await directory.sync()
      } finally {
        await directory.close()
      }
    } catch {}
  }

  function enqueue(change: () => void): Promise<void> {
    const next = writing.then(async () => {
      const before = state
      state = structuredClone(state)
      change()
      try {
        await write()
      } catch (error) {
        state = before
        throw new BridgeError(500, 'STORE_FAILED', `could not write ${file}: ${(error as Error).message}`, {
          cause: error,
        })
      }
    })
    writing = next.catch(() => {})
    return next
  }

  return {
    async load() {
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState()
        throw new BridgeError(500, 'STORE_FAILED', `could not read ${file}: ${(error as Error).message}`, {
          cause: error,
        })
      }
      let parsed: Partial<BridgeState> & { version?: unknown }
      try {
        parsed = JSON.parse(text) as typeof parsed
      } catch (error) {
        throw new BridgeError(
          500,
          'BRIDGE_STORE_CORRUPT',
          `${file} is not valid JSON (${(error as Error).message}): fix it, or move it away to start with no run-time subscriptions and routes`,
          { cause: error },
        )
      }
      if (parsed.version !== 1 || !Array.isArray(parsed.subscriptions) || !Array.isArray(parsed.routes)) {
        throw new BridgeError(
          500,
          'BRIDGE_STORE_CORRUPT',
          `${file} is not a bridge state file (expected { version: 1, subscriptions: [], routes: [] })`,
        )
      }
      state = { subscriptions: parsed.subscriptions, routes: parsed.routes }
      return structuredClone(state)
    },
    put(kind: StoreKind, item: StoredSubscription | StoredRoute) {
      return enqueue(() => {
        const list = listOf(state, kind)
        const at = list.findIndex((i) => i.id === item.id)
        if (at === -1) list.push(item)
        else list[at] = item
      })
    },
    delete(kind, id) {
      return enqueue(() => {
        const list = listOf(state, kind)
        const at = list.findIndex((i) => i.id === id)
        if (at !== -1) list.splice(at, 1)
      })
    },
    async close() {
      await writing
    },
  }
}
