import {
  DURATION_EXPECTED,
  type Duration,
  loadPeer,
  parseDuration,
  withTimeout as settleWithin,
} from '@backplane/internal'
import type { LoggerLike } from '@backplane/messaging'
import type { Etcd3, IKeyValue, Watcher } from 'etcd3'
import { BridgeError } from './errors.js'
import { renameEtcdOptions } from './legacy-options.js'
import type { BridgeState, BridgeStore, StoreChange, StoredRoute, StoredSubscription, StoreKind } from './store.js'

export interface EtcdStoreOptions {
  endpoints: string | string[]
  /** Keys are `<prefix>subscriptions/<id>` and `<prefix>routes/<id>`. Default `/backplane/bridge/`. */
  prefix?: string | undefined
  username?: string | undefined
  password?: string | undefined
  /** Per-call timeout: ms or a duration string ("5s"). Default 5 s. */
  timeout?: Duration | undefined
  /** @deprecated use `timeout` */
  timeoutMs?: number | undefined
  logger?: LoggerLike | undefined
}

const FOLDERS: Record<StoreKind, string> = { subscription: 'subscriptions/', route: 'routes/' }

function loadClient(): Promise<typeof import('etcd3')> {
  return loadPeer(
    'etcd3',
    () => import('etcd3'),
    (cause) =>
      new BridgeError(500, 'BRIDGE_STORE_CLIENT_MISSING', 'the etcd store needs the etcd3 package: npm install etcd3', {
        cause,
      }),
  )
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return settleWithin(promise, ms, () => new Error(`${what}: no answer from etcd within ${ms} ms`))
}

/**
 * Subscriptions and routes in etcd, one key each, shared by every bridge pointed at the same
 * prefix: each one watches the prefix and starts or stops what the others add or remove.
 * A watch cancelled by a compaction (while etcd was unreachable) is followed by a fresh list
 * and a diff, then a new watch, so no change is missed.
 */
export function etcdStore(input: EtcdStoreOptions): BridgeStore {
  const options = renameEtcdOptions(input)
  const prefix = options.prefix ?? '/backplane/bridge/'
  const parsed = options.timeout === undefined ? 5_000 : parseDuration(options.timeout)
  if (parsed === undefined || parsed <= 0) {
    throw new BridgeError(
      500,
      'BRIDGE_INVALID_CONFIG',
      `invalid etcd store options: timeout: expected ${DURATION_EXPECTED}, got ${JSON.stringify(options.timeout)}`,
    )
  }
  const timeoutMs = parsed
  const endpoints = typeof options.endpoints === 'string' ? options.endpoints.split(',') : options.endpoints
  let client: Etcd3 | undefined
  let watcher: Watcher | undefined
  let listener: ((change: StoreChange) => void) | undefined
  let closed = false
  // Revision of the first list, when load() ran before watch(): the watch starts after it.
  let watchFrom: string | undefined
  // What this process believes is in etcd: the watch reports only real differences.
  const known = new Map<string, string>()

  async function connect(): Promise<Etcd3> {
    if (client) return client
    const { Etcd3 } = await loadClient()
    client = new Etcd3({
      hosts: endpoints.map((e) => e.trim()),
      ...(options.username !== undefined && options.password !== undefined
        ? { auth: { username: options.username, password: options.password } }
        : {}),
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    })
    return client
  }

  function parseKey(key: string): { kind: StoreKind; id: string } | undefined {
    const rest = key.slice(prefix.length)
    for (const kind of ['subscription', 'route'] as const) {
      if (rest.startsWith(FOLDERS[kind])) return { kind, id: rest.slice(FOLDERS[kind].length) }
    }
    return undefined
  }

  function emit(key: string, value: string | undefined): void {
    const where = parseKey(key)
    if (!where || !listener) return
    let item: StoredSubscription | StoredRoute | undefined
    if (value !== undefined) {
      try {
        item = JSON.parse(value) as StoredSubscription | StoredRoute
      } catch {
        options.logger?.warn({ key }, 'bridge store: ignored a key that is not JSON')
        return
      }
    }
    try {
      listener({ kind: where.kind, id: where.id, item } as StoreChange)
    } catch (error) {
      // etcd3 rethrows listener errors asynchronously, which would kill the process.
      options.logger?.error({ err: (error as Error).message, key }, 'bridge store: change listener failed')
    }
  }

  async function list(): Promise<{ revision: string; kvs: Map<string, string> }> {
    const etcd = await connect()
    const response = await withTimeout(etcd.getAll().prefix(prefix).exec(), timeoutMs, 'list')
    const kvs = new Map<string, string>()
    for (const kv of response.kvs) kvs.set(kv.key.toString(), kv.value.toString())
    return { revision: String(response.header.revision), kvs }
  }

  async function startWatch(fromRevision: string): Promise<void> {
    const etcd = await connect()
    const next = String(BigInt(fromRevision) + 1n)
    const w = await withTimeout(etcd.watch().prefix(prefix).startRevision(next).create(), timeoutMs, 'watch')
    if (closed) {
      await w.cancel()
      return
    }
    watcher = w
    w.on('put', (kv: IKeyValue) => {
      const key = kv.key.toString()
      const value = kv.value.toString()
      if (known.get(key) === value) return
      known.set(key, value)
      emit(key, value)
    })
    w.on('delete', (kv: IKeyValue) => {
      const key = kv.key.toString()
      if (!known.has(key)) return
      known.delete(key)
      emit(key, undefined)
    })
    w.on('error', (error: Error) => {
      options.logger?.warn({ err: error.message }, 'bridge store: etcd watch lost; listing again')
      void resync()
    })
  }

  async function resync(): Promise<void> {
    const old = watcher
    watcher = undefined
    await old?.cancel().catch(() => {})
    for (let delay = 500; !closed; delay = Math.min(delay * 2, 30_000)) {
      try {
        const { revision, kvs } = await list()
        for (const [key, value] of kvs) {
          if (known.get(key) !== value) {
            known.set(key, value)
            emit(key, value)
          }
        }
        for (const key of [...known.keys()]) {
          if (!kvs.has(key)) {
            known.delete(key)
            emit(key, undefined)
          }
        }
        await startWatch(revision)
        return
      } catch (error) {
        options.logger?.warn({ err: (error as Error).message }, 'bridge store: etcd unreachable; retrying')
        await new Promise((r) => setTimeout(r, delay).unref())
      }
    }
  }

  return {
    async load(): Promise<BridgeState> {
      const { revision, kvs } = await list()
      const state: BridgeState = { subscriptions: [], routes: [] }
      for (const [key, value] of kvs) {
        const where = parseKey(key)
        if (!where) continue
        try {
          const item = JSON.parse(value) as StoredSubscription & StoredRoute
          known.set(key, value)
          if (where.kind === 'subscription') state.subscriptions.push(item)
          else state.routes.push(item)
        } catch {
          options.logger?.warn({ key }, 'bridge store: ignored a key that is not JSON')
        }
      }
      if (listener) await startWatch(revision)
      else watchFrom = revision
      return state
    },
    async put(kind: StoreKind, item: StoredSubscription | StoredRoute) {
      const etcd = await connect()
      const key = `${prefix}${FOLDERS[kind]}${item.id}`
      const value = JSON.stringify(item)
      known.set(key, value)
      try {
        await withTimeout(etcd.put(key).value(value).exec(), timeoutMs, 'put')
      } catch (error) {
        known.delete(key)
        throw new BridgeError(
          503,
          'STORE_FAILED',
          `could not save ${kind} ${item.id} to etcd: ${(error as Error).message}`,
          {
            cause: error,
          },
        )
      }
    },
    async delete(kind, id) {
      const etcd = await connect()
      const key = `${prefix}${FOLDERS[kind]}${id}`
      const before = known.get(key)
      known.delete(key)
      try {
        await withTimeout(etcd.delete().key(key).exec(), timeoutMs, 'delete')
      } catch (error) {
        if (before !== undefined) known.set(key, before)
        throw new BridgeError(
          503,
          'STORE_FAILED',
          `could not delete ${kind} ${id} from etcd: ${(error as Error).message}`,
          {
            cause: error,
          },
        )
      }
    },
    watch(fn) {
      listener = fn
      if (watchFrom !== undefined) {
        const revision = watchFrom
        watchFrom = undefined
        startWatch(revision).catch(() => void resync())
      }
    },
    async close() {
      closed = true
      await watcher?.cancel().catch(() => {})
      client?.close()
    },
  }
}
