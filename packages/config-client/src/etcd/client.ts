/**
 * etcd3 is an optional peer dependency: it is loaded on first use, so apps that only use files and
 * the environment never install it, and a missing install is a typed error that says what to do.
 */
import { durationSchema, loadPeer } from '@backplane/internal'
import type { Etcd3, IOptions } from 'etcd3'
import { z } from 'zod'
import type { Rename } from '../deprecated.js'
import { ConfigError, messageOf } from '../errors.js'

export type Etcd3Module = typeof import('etcd3')

let loading: Promise<Etcd3Module> | undefined

const MISSING_MESSAGE =
  'the etcd source and the service registry need the etcd3 package, an optional peer dependency: npm install etcd3'

/** Imports etcd3, or throws CONFIG_ETCD_MISSING naming the package to install. */
export function loadEtcd3(importer?: () => Promise<unknown>): Promise<Etcd3Module> {
  const attempt = async () => {
    try {
      const mod = await loadPeer<Partial<Etcd3Module> & { default?: Partial<Etcd3Module> }>(
        'etcd3',
        importer ?? (() => import('etcd3')),
        (cause) => new ConfigError('CONFIG_ETCD_MISSING', MISSING_MESSAGE, { cause }),
      )
      const resolved = typeof mod.Etcd3 === 'function' ? mod : mod.default
      if (typeof resolved?.Etcd3 !== 'function') throw new Error('the etcd3 module has no Etcd3 export')
      return resolved as Etcd3Module
    } catch (error) {
      if (ConfigError.is(error)) throw error
      throw new ConfigError(
        'CONFIG_ETCD_MISSING',
        `cannot load etcd3 (npm install etcd3@^1.1.2): ${messageOf(error)}`,
        {
          cause: error,
        },
      )
    }
  }
  if (importer) return attempt() // a test's stand-in: never cached
  loading ??= attempt().catch((error) => {
    loading = undefined
    throw error
  })
  return loading
}

const isEtcdClient = (value: unknown): value is Etcd3 =>
  typeof value === 'object' &&
  value !== null &&
  ['getAll', 'watch', 'lease', 'put', 'close'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function')

/** Connection options shared by etcd(), register(), discover() and the CLI. */
export const connectionShape = {
  /** etcd URLs: an array, or a comma-separated string. Default: the ETCD_ENDPOINTS environment variable. */
  endpoints: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** A client you built yourself (its own fault handling applies); not closed by us. */
  client: z.custom<Etcd3>(isEtcdClient, { error: 'expected an Etcd3 client (new Etcd3(...))' }).optional(),
  /** Timeout of every etcd call that can hang while etcd is down. */
  timeout: durationSchema({ min: 1 }).default(5_000),
  /** More options for the Etcd3 client we build from `endpoints` (auth, credentials, grpcOptions, ...). */
  etcdOptions: z.record(z.string(), z.unknown()).optional(),
}

/** The old names of the connection options. */
export const CONNECTION_RENAMES: readonly Rename[] = [{ from: 'timeoutMs', to: 'timeout' }]

/** The connection options as users may still write them. */
export interface DeprecatedConnectionOptions {
  /** @deprecated use timeout */
  timeoutMs?: number | undefined
}

export interface ConnectionOptions {
  endpoints?: string | string[] | undefined
  client?: Etcd3 | undefined
  /** Timeout of each etcd call, in ms. */
  timeout: number
  etcdOptions?: Record<string, unknown> | undefined
}

export interface Connection {
  /** The client to use now: renew() replaces it, so read it at each use rather than keeping it. */
  readonly client: Etcd3
  /** Whether renew() can replace the client: true for a client we built, false for the caller's. */
  readonly renewable: boolean
  /**
   * Closes the client we built and builds another on a new TCP connection: a connection that
   * stopped forwarding (black-holed) is never reused. A no-op on the caller's client.
   */
  renew(): void
  /** Closes the client if we built it; leaves a caller's client alone. */
  close(): void
}

/**
 * grpc-js shares one TCP connection among all channels with equal options, across clients: a
 * client built anew with the same options would get the dead connection back. A distinct value
 * of this (unknown to grpc, so otherwise ignored) option per client keeps each on its own.
 */
const CONNECTION_ID_OPTION = 'backplane.connection_id'
let connectionIds = 0

/** The client to use: the caller's, or one we build with our own timeouts in place of etcd3's retries. */
export async function connect(options: ConnectionOptions, what: string): Promise<Connection> {
  const given = options.client
  if (given) return { client: given, renewable: false, renew: () => {}, close: () => {} }
  const endpoints = resolveEndpoints(options.endpoints)
  if (endpoints.length === 0)
    throw new ConfigError(
      'CONFIG_INVALID_OPTIONS',
      `${what}: no etcd endpoints: pass endpoints (e.g. 'http://127.0.0.1:2379'), a client, or set ETCD_ENDPOINTS`,
      { details: ['endpoints: expected etcd URLs or the ETCD_ENDPOINTS environment variable'] },
    )
  const { Etcd3 } = await loadEtcd3()
  const extra = options.etcdOptions as Partial<IOptions> | undefined
  const build = () =>
    new Etcd3({
      hosts: endpoints,
      dialTimeout: options.timeout,
      // Our own timeouts, retries and resync replace etcd3's default retry policy and circuit
      // breaker, which would keep failing calls for 5 s after etcd is back.
      faultHandling: { host: () => NOOP_POLICY, global: NOOP_POLICY },
      ...extra,
      grpcOptions: {
        // Notice a dead connection (no FIN: a cable pulled, a host gone) within ~15 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        ...extra?.grpcOptions,
        [CONNECTION_ID_OPTION]: ++connectionIds,
      },
    })
  let client = build()
  let closed = false
  return {
    get client() {
      return client
    },
    renewable: true,
    renew() {
      if (closed) return
      client.close()
      client = build()
    },
    close() {
      closed = true
      client.close()
    },
  }
}

export function resolveEndpoints(endpoints: string | string[] | undefined): string[] {
  const given = endpoints ?? process.env.ETCD_ENDPOINTS ?? ''
  const list = Array.isArray(given) ? given : given.split(',')
  return list.map((e) => e.trim()).filter((e) => e !== '')
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>

/** A cockatiel-shaped policy that just runs the call once. */
const NOOP_POLICY = {
  execute: <R>(fn: (context: { signal: AbortSignal }) => R | Promise<R>) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
} as unknown as Policy
