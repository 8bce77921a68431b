/**
 * What the etcd source does for releases: follows which release runs (and whether this instance
 * is in a running gray release, whose overrides it then lays over the keys), and reports the
 * release the config serves in a leased instance entry that `backplane-config status` lists.
 * Reporting is best effort: a client that cannot write its entry still serves its configuration.
 */
import { hostname } from 'node:os'
import { z } from 'zod'
import { messageOf } from '../errors.js'
import { type ConfigLogger, safeLog } from '../logger.js'
import type { ReleaseInfo } from '../sources/types.js'
import type { Connection, ConnectionOptions } from './client.js'
import { type InstanceIdentity, withOverrides } from './gray.js'
import { INSTANCES_SERVICE, type ReleaseReport } from './instance-status.js'
import { type Registration, register } from './registry.js'
import { releaseKeys } from './release-store.js'
import { ReleaseView } from './release-view.js'

const namePart = z
  .string()
  .min(1)
  .regex(/^[^/]*$/, 'must not contain "/"')

/** The etcd source's `instance` option: who this process is, for gray releases and status. */
export const instanceSchema = z
  .strictObject({
    /** Unique among the app's instances (default `<hostname>-<pid>`). */
    id: namePart.optional(),
    /** Matched by gray releases that target labels (e.g. the metadata you register the service with). */
    labels: z.record(z.string(), z.string()).default({}),
    /** Shown by `backplane-config status` (e.g. the instance's URL). */
    address: z.string().default(''),
  })
  .prefault({})

export type InstanceOptions = z.input<typeof instanceSchema>

/** Lease of the instance entry, in seconds: it disappears this long after the process dies. */
const ENTRY_TTL = 10

/** The instance entry is written at most this often after the first report (ms). */
const REPORT_EVERY = 250

export interface ReleaseFollowerOptions {
  /** The app's own service registration: its metadata gets `config: { prefix, release, gray }` too. */
  registration: Registration | undefined
  connection: Connection
  /** How the instance entry connects: like the source (its own client when the source built one). */
  connectionOptions: ConnectionOptions
  prefix: string
  instance: z.output<typeof instanceSchema>
  timeoutMs: number
  checkMs: number | undefined
  logger: () => ConfigLogger
}

export class ReleaseFollower {
  readonly #opts: ReleaseFollowerOptions
  readonly #identity: InstanceIdentity
  readonly #view: ReleaseView
  #onChange: ((revision: number) => void) | undefined
  #registration: Promise<Registration | undefined> | undefined
  #report: ReleaseReport
  #closed = false
  #reportTimer: NodeJS.Timeout | undefined

  constructor(options: ReleaseFollowerOptions) {
    this.#opts = options
    const registered = options.registration?.instance
    this.#identity = {
      id: options.instance.id ?? registered?.instance ?? `${hostname()}-${process.pid}`,
      labels:
        Object.keys(options.instance.labels).length > 0
          ? options.instance.labels
          : stringLabels(registered?.metadata.labels),
    }
    this.#report = { release: undefined, gray: false, labels: { ...this.#identity.labels } }
    this.#view = new ReleaseView(options.connection, options.prefix, this.#identity, {
      timeoutMs: options.timeoutMs,
      checkMs: options.checkMs,
      logger: options.logger(),
      onChange: (revision) => this.#onChange?.(revision),
    })
  }

  load(): Promise<void> {
    return this.#view.load()
  }

  /** Watches the release keys; `onChange(revision)` after each change of them. */
  start(onChange: (revision: number) => void): void {
    this.#onChange = onChange
    this.#view.start()
  }

  /** The revision of the release keys as last read. */
  get revision(): number {
    return this.#view.revision
  }

  get release(): ReleaseInfo {
    return this.#view.release
  }

  /** The keys this instance sees: with the gray release's overrides when it is in one. */
  overlay(kvs: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
    const gray = this.#view.gray
    return gray ? withOverrides(kvs, gray.overrides) : kvs
  }

  /** The keys a gray release overrides, for change reports. */
  get grayKeys(): string[] {
    return Object.keys(this.#view.gray?.overrides ?? {})
  }

  /** The config now serves `release`: say so in the instance entry (registered on first use). */
  served(release: ReleaseInfo): void {
    if (this.#closed) return
    const same = release.id === this.#report.release && release.gray === this.#report.gray
    if (same && this.#registration) return
    this.#report = { ...this.#report, release: release.id, gray: release.gray }
    if (!this.#registration) {
      // The first report goes at once (start): `status` lists the instance from then on.
      this.#registration = this.#register()
      this.#updateRegistration()
      return
    }
    // Later ones are written at most every REPORT_EVERY, the last one winning: a burst of releases
    // costs one write, and no write competes with the next release for etcd.
    this.#reportTimer ??= setTimeout(() => {
      this.#reportTimer = undefined
      this.#updateEntries()
    }, REPORT_EVERY)
  }

  #updateEntries(): void {
    if (this.#closed || !this.#registration) return
    this.#updateRegistration()
    void this.#registration.then((registration) => {
      // Registering failed before: try again with this report.
      if (!registration) this.#registration = this.#register()
      else registration.update({ ...this.#report }).catch((error: unknown) => this.#failed('update', error))
    })
  }

  #updateRegistration(): void {
    const registration = this.#opts.registration
    if (!registration) return
    const config = { prefix: this.#opts.prefix, release: this.#report.release, gray: this.#report.gray }
    registration
      .update({ ...registration.instance.metadata, config })
      .catch((error: unknown) => this.#failed('update', error))
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#reportTimer)
    this.#onChange = undefined
    await this.#view.close()
    await (await this.#registration)?.close()
  }

  async #register(): Promise<Registration | undefined> {
    const { connectionOptions, instance, logger, prefix } = this.#opts
    try {
      const { endpoints, client, timeout, etcdOptions } = connectionOptions
      return await register({
        ...(client ? { client } : { endpoints }),
        ...(etcdOptions ? { etcdOptions } : {}),
        timeout,
        prefix: releaseKeys(prefix).base,
        service: INSTANCES_SERVICE,
        instance: this.#identity.id,
        address: instance.address || '-',
        ttl: ENTRY_TTL,
        metadata: { ...this.#report },
        logger: logger(),
      })
    } catch (error) {
      this.#failed('register', error)
      return undefined
    }
  }

  #failed(what: string, error: unknown): void {
    safeLog(
      this.#opts.logger(),
      'warn',
      { instance: this.#identity.id, err: messageOf(error) },
      `could not ${what} this instance's release entry (backplane-config status will not list it)`,
    )
  }
}

/** Labels from registry metadata: its `labels` entries whose values are strings. */
function stringLabels(labels: unknown): Record<string, string> {
  if (typeof labels !== 'object' || labels === null) return {}
  return Object.fromEntries(
    Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  )
}
