/**
 * Release records in etcd, beside the configuration and never under its prefix: etcd's own history
 * is lost at compaction, these are not. For the prefix `/config/orders/`:
 *
 *   /.backplane/releases/%2Fconfig%2Forders%2F/live/head        {"id":"r12","seq":12,"graySeq":3}
 *   /.backplane/releases/%2Fconfig%2Forders%2F/live/gray        {"id":"g3"} while gray release g3 runs
 *   /.backplane/releases/%2Fconfig%2Forders%2F/r/0000000012     the record of release r12
 *   /.backplane/releases/%2Fconfig%2Forders%2F/g/0000000003     the record of gray release g3
 *   /.backplane/releases/%2Fconfig%2Forders%2F/instances/<id>   a running client's release (leased)
 *
 * The prefix is URI-encoded so that one app's records can never be read as another's. Clients
 * watch `live/` only: the small keys that say which release runs, not the records.
 */
import { withTimeout } from '@backplane/internal'
import type { Etcd3 } from 'etcd3'
import { z } from 'zod'
import { ConfigError, messageOf, timedOut } from '../errors.js'
import { type ReleaseChange, recordShape } from './release-plan.js'

export const RELEASES_ROOT = '/.backplane/releases/'

const SEQ_DIGITS = 10

export interface ReleaseKeys {
  /** Everything of this prefix's releases. */
  readonly base: string
  /** What clients watch: `head` and `gray`. */
  readonly live: string
  readonly head: string
  readonly gray: string
  /** The records' common prefix. */
  readonly records: string
  record(seq: number): string
  readonly grayRecords: string
  grayRecord(seq: number): string
  readonly instances: string
}

const padded = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0')

export function releaseKeys(prefix: string): ReleaseKeys {
  const base = `${RELEASES_ROOT}${encodeURIComponent(prefix)}/`
  const live = `${base}live/`
  return {
    base,
    live,
    head: `${live}head`,
    gray: `${live}gray`,
    records: `${base}r/`,
    record: (seq) => `${base}r/${padded(seq)}`,
    grayRecords: `${base}g/`,
    grayRecord: (seq) => `${base}g/${padded(seq)}`,
    instances: `${base}instances/`,
  }
}

export const releaseRecordSchema = z.object({
  ...recordShape,
  kind: z.enum(['publish', 'rollback', 'promote']),
  /** For a rollback: the release whose values it restored. */
  restores: z.string().optional(),
  /** For a promote: the gray release that became this release. */
  promotes: z.string().optional(),
  /** The etcd revision of the configuration this release was computed from. */
  readRevision: z.string(),
  /** Every key under the prefix after the release: what a rollback to it restores. */
  values: z.record(z.string(), z.string()),
})

/** A release as stored: who published what, when, on top of which release, and the values after it. */
export type Release = z.output<typeof releaseRecordSchema> & { readonly changes: readonly ReleaseChange[] }

/** A release without the full values: what `history` lists. */
export type ReleaseSummary = Omit<Release, 'values'>

export const headSchema = z.object({
  /** The current release; none before the first (a gray release may start before it). */
  id: z.string().optional(),
  seq: z.number().int().min(0),
  /** Gray releases started so far: the next one is g<graySeq + 1>. */
  graySeq: z.number().int().min(0).default(0),
})
export type ReleaseHead = z.output<typeof headSchema> & { modRevision: string }

/** `r12` → 12; undefined for anything that is not a release id. */
export function seqOf(id: string, letter: 'r' | 'g' = 'r'): number | undefined {
  const match = /^([rg])([1-9][0-9]{0,9})$/.exec(id)
  return match && match[1] === letter ? Number(match[2]) : undefined
}

export function parseStored<S extends z.ZodType>(schema: S, key: string, text: string): z.output<S> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new ConfigError('CONFIG_SOURCE_FAILED', `${key} is not a release record: ${messageOf(error)}`, {
      keys: [key],
      cause: error,
    })
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success)
    throw new ConfigError(
      'CONFIG_SOURCE_FAILED',
      `${key} is not a release record: ${parsed.error.issues[0]?.message}`,
      {
        keys: [key],
      },
    )
  return parsed.data
}

export async function readHead(client: Etcd3, keys: ReleaseKeys, timeoutMs: number): Promise<ReleaseHead | undefined> {
  const res = await withTimeout(client.kv.range({ key: Buffer.from(keys.head) }), timeoutMs, () =>
    timedOut(`etcd (reading ${keys.head})`, timeoutMs),
  )
  const kv = res.kvs[0]
  if (!kv) return undefined
  return { ...parseStored(headSchema, keys.head, kv.value.toString()), modRevision: kv.mod_revision }
}

export async function readRelease(
  client: Etcd3,
  keys: ReleaseKeys,
  id: string,
  timeoutMs: number,
): Promise<Release | undefined> {
  const seq = seqOf(id)
  if (seq === undefined) return undefined
  const key = keys.record(seq)
  const text = await withTimeout(client.get(key).string(), timeoutMs, () =>
    timedOut(`etcd (reading ${key})`, timeoutMs),
  )
  return text === null ? undefined : parseStored(releaseRecordSchema, key, text)
}

/** The newest `limit` records under `prefix` (release or gray records: their keys sort by sequence), newest first. */
export async function listRecords<T>(
  client: Etcd3,
  prefix: string,
  limit: number,
  timeoutMs: number,
  parse: (key: string, text: string) => T,
): Promise<T[]> {
  const res = await withTimeout(
    client.getAll().prefix(prefix).sort('Key', 'Descend').limit(limit).exec(),
    timeoutMs,
    () => timedOut(`etcd (listing ${prefix})`, timeoutMs),
  )
  return res.kvs.map((kv) => parse(kv.key.toString(), kv.value.toString()))
}

/** The newest `limit` releases, newest first. */
export function listReleases(client: Etcd3, keys: ReleaseKeys, limit: number, timeoutMs: number): Promise<Release[]> {
  return listRecords(client, keys.records, limit, timeoutMs, (key, text) => parseStored(releaseRecordSchema, key, text))
}

export function summaryOf(release: Release): ReleaseSummary {
  const { values: _values, ...summary } = release
  return summary
}
