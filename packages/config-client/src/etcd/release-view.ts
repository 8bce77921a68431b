/**
 * What release a client serves: a mirror of the prefix's `live/` release keys (the current
 * release and the running gray release; never the records), and whether this instance is in the
 * gray release. The etcd source lays the gray overrides over the prefix's keys when it is.
 */
import { messageOf } from '../errors.js'
import { type ConfigLogger, safeLog } from '../logger.js'
import type { Connection } from './client.js'
import { type GrayRelease, type InstanceIdentity, inGray } from './gray.js'
import { parseGray } from './gray-store.js'
import { PrefixMirror } from './mirror.js'
import { headSchema, parseStored, type ReleaseKeys, releaseKeys } from './release-store.js'

/** The release a client serves. */
export interface ReleaseInfo {
  /** The current release, or the gray release this instance is in; undefined before any release. */
  readonly id: string | undefined
  /** True when `id` is a gray release. */
  readonly gray: boolean
}

export interface ReleaseViewOptions {
  timeoutMs: number
  checkMs?: number | undefined
  logger: ConfigLogger
  /** The release keys changed at `revision` (what this instance sees may not have). */
  onChange(revision: number): void
}

export class ReleaseView {
  readonly #keys: ReleaseKeys
  readonly #mirror: PrefixMirror
  readonly #identity: InstanceIdentity
  readonly #logger: ConfigLogger
  #head: string | undefined
  #gray: GrayRelease | undefined

  constructor(connection: Connection, prefix: string, identity: InstanceIdentity, options: ReleaseViewOptions) {
    this.#keys = releaseKeys(prefix)
    this.#identity = identity
    this.#logger = options.logger
    this.#mirror = new PrefixMirror(connection, this.#keys.live, {
      timeoutMs: options.timeoutMs,
      ...(options.checkMs === undefined ? {} : { checkMs: options.checkMs }),
      logger: options.logger,
      onChange: (_keys, revision) => {
        this.#read()
        options.onChange(revision)
      },
    })
  }

  async load(): Promise<void> {
    await this.#mirror.load()
    this.#read()
  }

  start(): void {
    this.#mirror.start()
  }

  close(): Promise<void> {
    return this.#mirror.close()
  }

  get revision(): number {
    return this.#mirror.revision
  }

  /** The gray release this instance is in, if any. */
  get gray(): GrayRelease | undefined {
    return this.#gray && inGray(this.#gray, this.#identity) ? this.#gray : undefined
  }

  get release(): ReleaseInfo {
    const gray = this.gray
    return gray ? { id: gray.id, gray: true } : { id: this.#head, gray: false }
  }

  #read(): void {
    const head = this.#mirror.kvs.get(this.#keys.head)
    const gray = this.#mirror.kvs.get(this.#keys.gray)
    try {
      this.#head = head === undefined ? undefined : parseStored(headSchema, this.#keys.head, head).id
    } catch (error) {
      safeLog(this.#logger, 'warn', { key: this.#keys.head, err: messageOf(error) }, 'unreadable release head: ignored')
    }
    try {
      this.#gray = gray === undefined ? undefined : parseGray(this.#keys.gray, gray)
    } catch (error) {
      // Serving the release everyone runs is the safe side of a gray record nobody can read.
      this.#gray = undefined
      safeLog(this.#logger, 'warn', { key: this.#keys.gray, err: messageOf(error) }, 'unreadable gray release: ignored')
    }
  }
}
