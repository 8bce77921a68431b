/**
 * The snapshot: each source's tree as of the last applied (valid) configuration, so that a start
 * while etcd is down can use etcd's last known values together with today's files and environment.
 * Written atomically (temp file, fsync, rename): a crash mid-write leaves the previous snapshot.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { ConfigError, messageOf } from './errors.js'
import { type ConfigTree, isPlainObject } from './tree.js'

export const SNAPSHOT_FORMAT = 'backplane-config-snapshot'

export interface SnapshotData {
  format: typeof SNAPSHOT_FORMAT
  version: 1
  savedAt: string
  /** etcd revision of the configuration, if it had one. */
  revision?: number
  /** Each source's tree, by source name. */
  sources: Record<string, ConfigTree>
}

// JSON has no bigint or Date: tag them so they come back as what the sources delivered.
function replacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  const original = (this as Record<string, unknown>)[key]
  if (original instanceof Date) return { $date: original.toISOString() }
  return value
}

function reviver(_key: string, value: unknown): unknown {
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
    if (keys.length === 1 && typeof value.$bigint === 'string') return BigInt(value.$bigint)
    if (keys.length === 1 && typeof value.$date === 'string') return new Date(value.$date)
  }
  return value
}

export class SnapshotStore {
  readonly path: string
  #pending: SnapshotData | undefined
  #writing: Promise<void> | undefined
  #seq = 0
  readonly #onError: (error: ConfigError) => void

  constructor(path: string, onError: (error: ConfigError) => void) {
    this.path = resolve(path)
    this.#onError = onError
  }

  /** The snapshot on disk; undefined when there is none. Throws CONFIG_SNAPSHOT_FAILED when it is unreadable. */
  async read(): Promise<SnapshotData | undefined> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new ConfigError('CONFIG_SNAPSHOT_FAILED', `cannot read the snapshot ${this.path}: ${messageOf(error)}`, {
        cause: error,
      })
    }
    let data: unknown
    try {
      data = JSON.parse(text, reviver)
    } catch (error) {
      throw new ConfigError('CONFIG_SNAPSHOT_FAILED', `the snapshot ${this.path} is not valid JSON`, { cause: error })
    }
    if (!isPlainObject(data) || data.format !== SNAPSHOT_FORMAT || data.version !== 1 || !isPlainObject(data.sources))
      throw new ConfigError(
        'CONFIG_SNAPSHOT_FAILED',
        `${this.path} is not a @backplane/config-client snapshot (format ${SNAPSHOT_FORMAT}, version 1)`,
      )
    return data as unknown as SnapshotData
  }

  /**
   * Schedules a write of `data`. Writes never overlap; while one runs, only the latest of the
   * data given meanwhile is written after it. Failures go to `onError`, never to the caller.
   */
  write(data: SnapshotData): void {
    this.#pending = data
    if (this.#writing === undefined) this.#writing = this.#drain()
  }

  /** Resolves when every scheduled write has finished. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending !== undefined) {
        const data = this.#pending
        this.#pending = undefined
        try {
          await this.#writeAtomically(`${JSON.stringify(data, replacer, 2)}\n`)
        } catch (error) {
          this.#onError(
            new ConfigError('CONFIG_SNAPSHOT_FAILED', `cannot write the snapshot ${this.path}: ${messageOf(error)}`, {
              cause: error,
            }),
          )
        }
      }
    } finally {
      this.#writing = undefined
    }
  }

  async #writeAtomically(text: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true })
    const tmp = `${this.path}.${process.pid}.${++this.#seq}.tmp`
    try {
      // 0600: the snapshot holds secret values in clear (it must, to start from them).
      const handle = await open(tmp, 'w', 0o600)
      try {
        await handle.writeFile(text, 'utf8')
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(tmp, this.path)
    } catch (error) {
      await rm(tmp, { force: true }).catch(() => {})
      throw error
    }
  }
}
