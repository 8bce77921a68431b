/**
 * `releases()`: publish configuration changes as releases (validated, compare-and-swap, recorded
 * with author, message and diff), list the history, and roll back to any kept release, also after
 * etcd compacted its own history.
 */
import { z } from 'zod'
import { renamed } from '../deprecated.js'
import { ConfigError } from '../errors.js'
import { parseOptions } from '../options.js'
import { isZodSchema } from '../schema.js'
import { keysOptionSchema, ringFromOption } from '../sealing/key-ring.js'
import type { ConfigSource } from '../sources/types.js'
import { loadLayers, readPrefix } from './admin.js'
import { CONNECTION_RENAMES, connect, connectionShape, type DeprecatedConnectionOptions } from './client.js'
import type { GrayRelease, GrayTargets } from './gray.js'
import { abortGray, type GrayResult, promoteGray, startGray } from './gray-ops.js'
import { listGrays, readActiveGray } from './gray-store.js'
import { type InstanceStatus, readInstances } from './instance-status.js'
import { prefixSchema } from './keys.js'
import { defaultAuthor, type PublishContext, type PublishResult, publishRelease } from './publish.js'
import { applyChanges, diffKeys, type ReleaseChanges } from './release-plan.js'
import {
  listReleases,
  type Release,
  type ReleaseSummary,
  readHead,
  readRelease,
  releaseKeys,
  summaryOf,
} from './release-store.js'

export type { GrayRelease, GrayTargets } from './gray.js'
export type { GrayResult } from './gray-ops.js'
export type { InstanceStatus } from './instance-status.js'
export type { PublishResult } from './publish.js'
export type { ReleaseChange, ReleaseChanges } from './release-plan.js'
export type { Release, ReleaseSummary } from './release-store.js'

const releasesOptionsSchema = z.strictObject({
  ...connectionShape,
  /** The app's key prefix, as given to its etcd source. */
  prefix: prefixSchema,
  /** The app's schema: every release is validated against it before anything is written. */
  schema: z.custom<z.ZodType>(isZodSchema, { error: 'expected the app’s zod schema, e.g. z.object({ ... })' }),
  /** Sources the app layers under etcd (files, say), loaded once per publish for the validation. */
  sources: z
    .array(
      z.custom<ConfigSource>(
        (v) => typeof v === 'object' && v !== null && typeof (v as { load?: unknown }).load === 'function',
        { error: 'expected a source such as file(...)' },
      ),
    )
    .default([]),
  /** Recorded as who published (default: the OS user and host, `user@host`). */
  author: z.string().min(1).optional(),
  /** Release records kept (older ones are deleted by later publishes; they cannot be rolled back to). */
  keep: z.number().int().min(1).default(100),
  /**
   * Key ring (or its file): values written to secret fields are sealed, sealed values are opened
   * to validate. Default: BACKPLANE_CONFIG_KEYS, if set.
   */
  keys: keysOptionSchema,
})

export type ReleasesOptions = z.input<typeof releasesOptionsSchema> & DeprecatedConnectionOptions

const publishOptionsSchema = z.strictObject({
  /** Why: shown by `history`. */
  message: z.string().optional(),
  /** Overrides the `author` option for this release. */
  author: z.string().min(1).optional(),
  /** Publish only if this release (e.g. `r12`) is still the current one, else CONFIG_CONFLICT. */
  basedOn: z.string().min(1).optional(),
})

export type PublishOptions = z.input<typeof publishOptionsSchema>

const grayOptionsSchema = publishOptionsSchema.extend({ targets: z.unknown() })

export type GrayOptions = PublishOptions & { targets: GrayTargets }

const endGrayOptionsSchema = z.strictObject({
  /** Act only if this gray release (e.g. `g2`) is the one running, else CONFIG_CONFLICT. */
  id: z.string().min(1).optional(),
  message: z.string().optional(),
  author: z.string().min(1).optional(),
})

export type EndGrayOptions = z.input<typeof endGrayOptionsSchema>

export interface Releases {
  readonly prefix: string
  /**
   * Validates and writes `changes` as a new release. Resolves with `release: undefined` when the
   * changes change nothing. Rejects with CONFIG_INVALID (schema), CONFIG_CONFLICT (someone else
   * published first, or `basedOn` is not the current release) or CONFIG_TIMEOUT; nothing is
   * written then.
   */
  publish(changes: ReleaseChanges, options?: PublishOptions): Promise<PublishResult>
  /** Publishes the values of release `id` as a new release (kind `rollback`). */
  rollback(id: string, options?: PublishOptions): Promise<PublishResult>
  /** The newest releases first (default 20). */
  history(options?: { limit?: number }): Promise<ReleaseSummary[]>
  /** One release with its values, or undefined if it is not kept (or never was). */
  get(id: string): Promise<Release | undefined>
  /** The current release, and how the keys in etcd differ from it (writes made outside releases). */
  current(): Promise<{ release: ReleaseSummary | undefined; drift: PublishResult['changes'] }>
  /**
   * Starts a gray release: `changes` are seen only by the instances `targets` selects (ids, labels,
   * or a stable percentage), validated as they will see them. One runs at a time per prefix:
   * CONFIG_CONFLICT while another runs.
   */
  gray(changes: ReleaseChanges, options: GrayOptions): Promise<GrayResult>
  /** Makes the running gray release the release for everyone (a release of kind `promote`). */
  promote(options?: EndGrayOptions): Promise<PublishResult & { gray: GrayRelease }>
  /** Drops the running gray release: its instances go back to the current release's values. */
  abort(options?: EndGrayOptions): Promise<{ gray: GrayRelease; revision: string }>
  /** The running gray release, if any. */
  runningGray(): Promise<GrayRelease | undefined>
  /** Gray releases, newest first (default 20), running, promoted and aborted. */
  grays(options?: { limit?: number }): Promise<GrayRelease[]>
  /** Every client reporting on this prefix, with the release it runs (see the etcd source's `instance`). */
  instances(): Promise<InstanceStatus[]>
  close(): Promise<void>
}

export async function releases(options: ReleasesOptions): Promise<Releases> {
  const opts = parseOptions(releasesOptionsSchema, renamed(options, CONNECTION_RENAMES, 'releases'), 'releases')
  const ring = ringFromOption(opts.keys, 'releases')
  const connection = await connect(opts, 'releases')
  const keys = releaseKeys(opts.prefix)
  const { timeout } = opts
  const context = async (): Promise<PublishContext> => ({
    client: connection.client,
    prefix: opts.prefix,
    timeoutMs: timeout,
    schema: opts.schema,
    layers: opts.sources.length > 0 ? await loadLayers(opts.sources, opts.schema) : [],
    keep: opts.keep,
    ring,
  })
  const author = (given: string | undefined) => given ?? opts.author ?? defaultAuthor()

  return {
    prefix: opts.prefix,
    async publish(changes, raw) {
      const o = parseOptions(publishOptionsSchema, raw, 'publish')
      // Checked before anything is read: a malformed request is the caller's, not etcd's.
      applyChanges(new Map(), opts.prefix, changes)
      return publishRelease(await context(), {
        kind: 'publish',
        author: author(o.author),
        message: o.message,
        basedOn: o.basedOn,
        next: (current) => applyChanges(current, opts.prefix, changes),
      })
    },
    async rollback(id, raw) {
      const o = parseOptions(publishOptionsSchema, raw, 'rollback')
      const target = await readRelease(connection.client, keys, id, timeout)
      if (!target)
        throw new ConfigError(
          'CONFIG_INVALID_OPTIONS',
          `rollback: no release ${JSON.stringify(id)} is kept for ${opts.prefix}: expected an id that history lists, e.g. r3`,
        )
      return publishRelease(await context(), {
        kind: 'rollback',
        author: author(o.author),
        message: o.message,
        basedOn: o.basedOn,
        restores: target.id,
        next: () => new Map(Object.entries(target.values)),
      })
    },
    async history(raw) {
      const { limit } = parseOptions(z.strictObject({ limit: z.number().int().min(1).default(20) }), raw, 'history')
      return (await listReleases(connection.client, keys, limit, timeout)).map(summaryOf)
    },
    get: (id) => readRelease(connection.client, keys, id, timeout),
    async current() {
      const head = await readHead(connection.client, keys, timeout)
      const release = head?.id ? await readRelease(connection.client, keys, head.id, timeout) : undefined
      const state = await readPrefix(connection.client, opts.prefix, timeout)
      const now = new Map([...state.kvs].map(([k, v]) => [k, v.value]))
      return {
        release: release ? summaryOf(release) : undefined,
        drift: diffKeys(new Map(Object.entries(release?.values ?? {})), now),
      }
    },
    async gray(changes, raw) {
      const o = parseOptions(grayOptionsSchema, raw, 'gray')
      applyChanges(new Map(), opts.prefix, changes)
      return startGray(await context(), {
        targets: o.targets as GrayTargets,
        author: author(o.author),
        message: o.message,
        basedOn: o.basedOn,
        next: (current) => applyChanges(current, opts.prefix, changes),
      })
    },
    async promote(raw) {
      const o = parseOptions(endGrayOptionsSchema, raw, 'promote')
      return promoteGray(await context(), { ...o, author: author(o.author) })
    },
    async abort(raw) {
      const o = parseOptions(endGrayOptionsSchema, raw, 'abort')
      return abortGray(await context(), { ...o, author: author(o.author) })
    },
    runningGray: async () => (await readActiveGray(connection.client, keys, timeout))?.record,
    async grays(raw) {
      const { limit } = parseOptions(z.strictObject({ limit: z.number().int().min(1).default(20) }), raw, 'grays')
      return listGrays(connection.client, keys, limit, timeout)
    },
    instances: () => readInstances(connection.client, keys, timeout),
    async close() {
      connection.close()
    },
  }
}
