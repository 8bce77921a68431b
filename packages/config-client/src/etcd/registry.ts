/**
 * Service registry on etcd: an instance keeps a key alive with a lease (it disappears within `ttl`
 * seconds of the process dying), and `discover` mirrors the live instances of a service.
 */
import { backoffSequence, DURATION_EXPECTED, parseDuration, sleep, withTimeout } from '@backplane/internal'
import type { Lease } from 'etcd3'
import { z } from 'zod'
import { renamed } from '../deprecated.js'
import { GuardedEmitter } from '../emitter.js'
import { ConfigError, messageOf, timedOut } from '../errors.js'
import { type ConfigLogger, isLogger, safeLog, silentLogger } from '../logger.js'
import { parseOptions } from '../options.js'
import { deepEqual } from '../tree.js'
import {
  CONNECTION_RENAMES,
  type Connection,
  connect,
  connectionShape,
  type DeprecatedConnectionOptions,
} from './client.js'
import { PrefixMirror, watchCheckSchema } from './mirror.js'

const namePart = z
  .string()
  .min(1)
  .regex(/^[^/]*$/, 'must not contain "/"')

const registryPrefix = z
  .string()
  .min(1)
  .refine((p) => p.endsWith('/'), { error: "expected a prefix ending in '/', e.g. '/services/'" })
  .default('/services/')

const logger = z.custom<ConfigLogger>(isLogger, { error: 'expected a pino-like logger' }).optional()

const ttlSeconds = z.union([z.number().int().min(1), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value
  const ms = parseDuration(value)
  if (ms === undefined || ms < 1) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a number of seconds or ${DURATION_EXPECTED}, got ${JSON.stringify(value)}`,
    })
    return z.NEVER
  }
  return Math.ceil(ms / 1_000)
})

/** Re-registration after a lost lease: 200 ms doubling up to 10 s, with full jitter. */
const REREGISTER_BACKOFF = { initialDelay: 200, maxDelay: 10_000, factor: 2, jitter: 'full' } as const

const registerOptionsSchema = z.strictObject({
  ...connectionShape,
  /** Service name: instances of one service are listed together. */
  service: namePart,
  /** This instance's id, unique within the service (e.g. hostname-pid). */
  instance: namePart,
  /** Where to reach it, e.g. `http://10.0.0.5:8080`. */
  address: z.string().min(1),
  /**
   * Lease time to live: the key disappears this long after the process stops renewing it. A number
   * is seconds (etcd's lease unit); a duration string ("10s", "1m") is rounded up to whole seconds.
   */
  ttl: ttlSeconds.default(10),
  /** Free-form data published with the instance (version, zone, weight, ...). */
  metadata: z.record(z.string(), z.unknown()).default({}),
  /** Key prefix of the registry. */
  prefix: registryPrefix,
  logger,
})

export type RegisterOptions = z.input<typeof registerOptionsSchema> & DeprecatedConnectionOptions

/** A registered instance, as stored in etcd and returned by discover(). */
export interface ServiceInstance {
  readonly service: string
  readonly instance: string
  readonly address: string
  readonly metadata: Readonly<Record<string, unknown>>
  readonly registeredAt: string
}

export interface RegistrationEvents {
  /** The key is (again) in etcd: after the first registration and after each re-registration. */
  registered: (instance: ServiceInstance) => void
  /** The lease was lost (etcd unreachable for longer than ttl): re-registering in the background. */
  lost: (error: ConfigError) => void
  error: (error: ConfigError) => void
}

export interface Registration {
  /** The etcd key of this instance. */
  readonly key: string
  readonly instance: ServiceInstance
  /** Whether the key is currently believed to be alive in etcd. */
  readonly registered: boolean
  on<E extends keyof RegistrationEvents>(event: E, listener: RegistrationEvents[E]): this
  off<E extends keyof RegistrationEvents>(event: E, listener?: RegistrationEvents[E]): this
  /**
   * Replaces the published metadata: the key is written again under the same lease (or with the
   * next registration, while the lease is lost). Resolves once etcd has it; rejects with a
   * ConfigError when etcd does not answer within `timeout` (the new metadata is kept and written
   * at the next update or registration).
   */
  update(metadata: Record<string, unknown>): Promise<void>
  /** Revokes the lease (the key disappears at once) and stops renewing. */
  close(): Promise<void>
}

/**
 * Registers this instance under `<prefix><service>/<instance>` with a lease renewed automatically.
 * Resolves once the key is written; rejects with a ConfigError when etcd does not answer within
 * `timeout`. If the lease is lost later (etcd down longer than `ttl`), it registers again as soon
 * as etcd answers.
 */
export async function register(options: RegisterOptions): Promise<Registration> {
  const opts = parseOptions(registerOptionsSchema, renamed(options, CONNECTION_RENAMES, 'register'), 'register')
  const log = opts.logger ?? silentLogger
  const connection = await connect(opts, 'register')
  const key = `${opts.prefix}${opts.service}/${opts.instance}`
  const instance: ServiceInstance = Object.freeze({
    service: opts.service,
    instance: opts.instance,
    address: opts.address,
    metadata: Object.freeze({ ...opts.metadata }),
    registeredAt: new Date().toISOString(),
  })
  const registration = new LeasedRegistration(connection, key, instance, opts.ttl, opts.timeout, log)
  try {
    await registration.grantAndPut()
  } catch (error) {
    connection.close()
    throw error
  }
  return registration
}

class LeasedRegistration extends GuardedEmitter<RegistrationEvents> implements Registration {
  #lease: Lease | undefined
  #registered = false
  #closed = false
  #checking: Promise<void> | undefined
  #instance: ServiceInstance
  // Updates are written one after another: the last one called is the one etcd keeps.
  #writing: Promise<void> = Promise.resolve()
  readonly #abort = new AbortController()

  constructor(
    private readonly connection: Connection,
    readonly key: string,
    instance: ServiceInstance,
    private readonly ttl: number,
    private readonly timeoutMs: number,
    private readonly log: ConfigLogger,
  ) {
    super((error, event) => safeLog(log, 'error', { event, err: messageOf(error) }, 'registry listener threw'))
    this.#instance = instance
  }

  get registered(): boolean {
    return this.#registered
  }

  get instance(): ServiceInstance {
    return this.#instance
  }

  update(metadata: Record<string, unknown>): Promise<void> {
    const parsed = parseOptions(z.record(z.string(), z.unknown()), metadata, 'registration.update')
    this.#instance = Object.freeze({ ...this.#instance, metadata: Object.freeze({ ...parsed }) })
    const write = this.#writing.then(async () => {
      const lease = this.#lease
      if (this.#closed || !this.#registered || !lease) return
      await withTimeout(lease.put(this.key).value(JSON.stringify(this.#instance)).exec(), this.timeoutMs, () =>
        timedOut(`etcd (updating ${this.key})`, this.timeoutMs),
      )
    })
    this.#writing = write.catch(() => {})
    return write
  }

  async grantAndPut(): Promise<void> {
    const lease = this.connection.client.lease(this.ttl, { autoKeepAlive: true })
    lease.on('lost', (error) => this.#onLost(lease, error))
    lease.on('keepaliveFailed', (error) =>
      safeLog(this.log, 'debug', { key: this.key, err: messageOf(error) }, 'lease keep-alive failed (retrying)'),
    )
    try {
      await withTimeout(lease.grant(), this.timeoutMs, () =>
        timedOut(`etcd (granting a lease for ${this.key})`, this.timeoutMs),
      )
      await withTimeout(lease.put(this.key).value(JSON.stringify(this.instance)).exec(), this.timeoutMs, () =>
        timedOut(`etcd (registering ${this.key})`, this.timeoutMs),
      )
    } catch (error) {
      // revoke() stops the lease's keep-alive at once, whether or not etcd answers.
      void lease.revoke().catch(() => {})
      throw ConfigError.is(error)
        ? error
        : new ConfigError('CONFIG_TIMEOUT', `cannot register ${this.key}: ${messageOf(error)}`, { cause: error })
    }
    this.#lease = lease
    this.#registered = true
    this.#checking ??= this.#checkLease()
    this.emitSafely('registered', this.instance)
  }

  /**
   * etcd3's keep-alive stream can stay open while no renewal reaches etcd (a black-holed
   * connection): it gives up only after 2 × ttl, long after the key expired, and then retries on
   * the same dead connection. So every ttl/3 (as often as it renews) ask etcd itself, with a
   * deadline of at most ttl/3: a black-holed connection is replaced before the key expires.
   */
  async #checkLease(): Promise<void> {
    const every = (this.ttl * 1_000) / 3
    while (!this.#closed) {
      await sleep(every, this.#abort.signal)
      const lease = this.#lease
      if (this.#closed || !this.#registered || !lease) continue
      const problem = await this.#leaseProblem(lease, Math.min(this.timeoutMs, every))
      if (problem !== undefined) this.#onLost(lease, problem, true)
    }
  }

  /** Why the lease is lost or about to be, or undefined while etcd holds the key under a renewed lease. */
  async #leaseProblem(lease: Lease, deadlineMs: number): Promise<unknown> {
    try {
      const res = await withTimeout(
        lease
          .grant()
          .then((ID) =>
            this.connection.client.leaseClient.leaseTimeToLive(
              { ID, keys: true },
              { deadline: Date.now() + deadlineMs },
            ),
          ),
        deadlineMs,
        () => timedOut(`etcd (checking the lease of ${this.key})`, deadlineMs),
      )
      const left = Number(res.TTL) // whole seconds, rounded down; -1 once expired
      if (left < 0) return new Error('etcd says the lease has expired')
      if (!res.keys.some((k) => k.toString() === this.key)) return new Error(`${this.key} is gone from etcd`)
      // Renewed every ttl/3, less than ttl/3 left means two renewals in a row did not arrive.
      if ((left + 1) * 1_000 <= (this.ttl * 1_000) / 3)
        return new Error(`the lease is not being renewed (${left} s of ${this.ttl} s left)`)
      return undefined
    } catch (error) {
      // No answer: the connection is black-holed (or etcd hangs). A quick error (etcd down, the
      // connection refused) is left to etcd3, which notices the same on its keep-alive stream.
      if (isNoAnswer(error)) return error
      safeLog(this.log, 'debug', { key: this.key, err: messageOf(error) }, 'lease check failed')
      return undefined
    }
  }

  /** `renew`: the connection is suspect, so re-register on a new one (when the client is ours). */
  #onLost(lease: Lease, error: unknown, renew = false): void {
    if (this.#closed || lease !== this.#lease || !this.#registered) return
    this.#registered = false
    // Stop renewing the old lease (a no-op after etcd3's own `lost`): the new one takes the key over.
    lease.release()
    if (renew) this.connection.renew()
    const wrapped = new ConfigError(
      'CONFIG_TIMEOUT',
      `lease of ${this.key} lost (${messageOf(error)}): registering again when etcd answers`,
      { cause: error },
    )
    safeLog(this.log, 'warn', { key: this.key, err: messageOf(error) }, 'service registration lost: re-registering')
    this.emitSafely('lost', wrapped)
    void this.#reregister()
  }

  async #reregister(): Promise<void> {
    const backoff = backoffSequence(REREGISTER_BACKOFF)
    while (!this.#closed) {
      try {
        await this.grantAndPut()
        safeLog(this.log, 'info', { key: this.key }, 'service registered again')
        return
      } catch (error) {
        safeLog(this.log, 'debug', { key: this.key, err: messageOf(error) }, 're-registration failed')
        await sleep(backoff.next(), this.#abort.signal)
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#abort.abort()
    const lease = this.#lease
    this.#registered = false
    try {
      if (lease)
        await withTimeout(lease.revoke(), this.timeoutMs, () =>
          timedOut(`etcd (revoking the lease of ${this.key})`, this.timeoutMs),
        )
    } catch (error) {
      // etcd is down: the key will expire with its lease anyway.
      safeLog(this.log, 'warn', { key: this.key, err: messageOf(error) }, 'could not revoke the lease; it will expire')
    } finally {
      this.connection.close()
      this.removeAllListeners()
    }
  }
}

/** Our timeout, or gRPC's deadline (etcd3's GRPCDeadlineExceededError), whichever fired first. */
const isNoAnswer = (error: unknown): boolean =>
  (ConfigError.is(error) && error.code === 'CONFIG_TIMEOUT') ||
  (error instanceof Error && error.constructor.name === 'GRPCDeadlineExceededError')

// ------------------------------------------------------------------------------------------------
// Discovery

const discoverOptionsSchema = z.strictObject({
  ...connectionShape,
  prefix: registryPrefix,
  /** How often the live watch is checked against etcd (a silent or black-holed watch is replaced); 0: never. */
  watchCheck: watchCheckSchema,
  logger,
})

export type DiscoverOptions = z.input<typeof discoverOptionsSchema> & DeprecatedConnectionOptions

export interface DiscoveryEvents {
  /** The set of instances changed; `instances` is the new list. */
  change: (event: {
    instances: readonly ServiceInstance[]
    added: readonly ServiceInstance[]
    removed: readonly ServiceInstance[]
  }) => void
  error: (error: ConfigError) => void
}

export interface Discovery {
  readonly service: string
  /** The live instances, sorted by instance id. */
  instances(): readonly ServiceInstance[]
  on<E extends keyof DiscoveryEvents>(event: E, listener: DiscoveryEvents[E]): this
  off<E extends keyof DiscoveryEvents>(event: E, listener?: DiscoveryEvents[E]): this
  close(): Promise<void>
}

/**
 * The live instances of `service`, kept current by a watch with the same guarantees as the config
 * source (resume after disconnects, re-list after compaction). Rejects when etcd does not answer
 * within `timeout`.
 */
export async function discover(service: string, options: DiscoverOptions = {}): Promise<Discovery> {
  const name = parseOptions(z.object({ service: namePart }), { service }, 'discover').service
  const opts = parseOptions(discoverOptionsSchema, renamed(options, CONNECTION_RENAMES, 'discover'), 'discover')
  const connection = await connect(opts, 'discover')
  const discovery = new WatchedDiscovery(name, `${opts.prefix}${name}/`, connection, {
    timeoutMs: opts.timeout,
    checkMs: opts.watchCheck,
    logger: opts.logger ?? silentLogger,
  })
  try {
    await discovery.start()
  } catch (error) {
    connection.close()
    throw error
  }
  return discovery
}

class WatchedDiscovery extends GuardedEmitter<DiscoveryEvents> implements Discovery {
  readonly #mirror: PrefixMirror
  private readonly log: ConfigLogger
  #instances: readonly ServiceInstance[] = []

  constructor(
    readonly service: string,
    prefix: string,
    private readonly connection: Connection,
    options: { timeoutMs: number; checkMs: number; logger: ConfigLogger },
  ) {
    super((error, event) =>
      safeLog(options.logger, 'error', { event, err: messageOf(error) }, 'discovery listener threw'),
    )
    this.log = options.logger
    this.#mirror = new PrefixMirror(connection, prefix, { ...options, onChange: () => this.#refresh() })
  }

  async start(): Promise<void> {
    await this.#mirror.load()
    this.#instances = this.#parse()
    this.#mirror.start()
  }

  instances(): readonly ServiceInstance[] {
    return this.#instances
  }

  #refresh(): void {
    const prev = this.#instances
    const next = this.#parse()
    const added = next.filter((n) => !prev.some((p) => deepEqual(p, n)))
    const removed = prev.filter((p) => !next.some((n) => deepEqual(p, n)))
    this.#instances = next
    if (added.length > 0 || removed.length > 0) this.emitSafely('change', { instances: next, added, removed })
  }

  #parse(): readonly ServiceInstance[] {
    const out: ServiceInstance[] = []
    for (const [key, value] of this.#mirror.kvs) {
      try {
        const parsed = JSON.parse(value) as ServiceInstance
        if (typeof parsed?.address === 'string' && typeof parsed.instance === 'string') out.push(Object.freeze(parsed))
        else throw new Error('not a registration')
      } catch (error) {
        const wrapped = new ConfigError(
          'CONFIG_SOURCE_FAILED',
          `${key} does not hold a service registration: skipped`,
          {
            keys: [key],
            cause: error,
          },
        )
        safeLog(this.log, 'warn', { key }, wrapped.message)
        this.emitSafely('error', wrapped)
      }
    }
    return Object.freeze(out.sort((a, b) => a.instance.localeCompare(b.instance)))
  }

  async close(): Promise<void> {
    await this.#mirror.close()
    this.connection.close()
    this.removeAllListeners()
  }
}
