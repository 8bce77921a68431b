/**
 * Publishing a release: read the prefix and the head release, apply the changes, validate the
 * result, then write the values, the release record and the new head in ONE transaction that
 * holds only if nothing changed since the read (compare-and-swap). A concurrent publish makes the
 * transaction fail, and the caller gets CONFIG_CONFLICT: nothing is retried behind its back,
 * because its changes were validated (and perhaps reviewed) against what it read.
 */
import { hostname, userInfo } from 'node:os'
import { withTimeout } from '@backplane/internal'
import type { Etcd3, ICompare, IRequestOp } from 'etcd3'
import type { z } from 'zod'
import { ConfigError, timedOut } from '../errors.js'
import { silentLogger } from '../logger.js'
import { isSealed, sealValue } from '../sealing/envelope.js'
import type { KeyRing } from '../sealing/key-ring.js'
import { SealedTrees } from '../sealing/sealed-trees.js'
import type { ConfigTree } from '../tree.js'
import { type PrefixState, readPrefix, unchangedSince, validateLayers } from './admin.js'
import { withOverrides } from './gray.js'
import { type ActiveGray, readActiveGray } from './gray-store.js'
import { buildTree, keyToPath } from './keys.js'
import { diffKeys, type ReleaseChange } from './release-plan.js'
import { type Release, type ReleaseHead, type ReleaseKeys, readHead, releaseKeys } from './release-store.js'
import { needsSealing } from './reseal.js'

/** etcd refuses a transaction with more operations than this (its --max-txn-ops default is 128). */
const MAX_TXN_OPS = 128

export interface PublishContext {
  client: Etcd3
  prefix: string
  timeoutMs: number
  /** Validate against this schema (with `layers` under etcd); undefined skips validation. */
  schema: z.ZodType | undefined
  layers: readonly ConfigTree[]
  /** Releases kept; older records are deleted by the publish that goes past it. */
  keep: number
  /** Seals what a release writes to secret fields, and opens sealed values to validate them. */
  ring?: KeyRing | undefined
}

export interface PublishRequest {
  kind: Release['kind']
  author?: string | undefined
  message?: string | undefined
  /** Fail with CONFIG_CONFLICT unless this release id is still the head. */
  basedOn?: string | undefined
  restores?: string | undefined
  promotes?: string | undefined
  /**
   * Ends the running gray release `id` in the same transaction (promote): the writes that do it.
   * CONFIG_CONFLICT when another gray release (or none) runs by the time of the read.
   */
  endsGray?: { id: string; writes(gray: ActiveGray, release: Release): IRequestOp[] } | undefined
  /** The keys under the prefix after the release, from the keys before it. */
  next(current: ReadonlyMap<string, string>): Map<string, string>
}

export interface PublishResult {
  /** The release written; undefined when the changes changed nothing (nothing written). */
  release: Release | undefined
  /** The keys that differed. */
  changes: ReleaseChange[]
  /** The head release before this publish. */
  previous: string | undefined
  /** The etcd revision the release was written at (undefined when nothing was written). */
  revision: string | undefined
}

/** `user@host` of the process: who published, unless the caller says. */
export function defaultAuthor(): string {
  let user = process.env.USER ?? process.env.USERNAME ?? 'unknown'
  try {
    user = userInfo().username
  } catch {
    // No passwd entry (containers running as an arbitrary uid): keep the environment's name.
  }
  return `${user}@${hostname()}`
}

/** What a publish reads first: the keys, the current release and the gray release running, if any. */
export interface ReleaseState {
  readonly keys: ReleaseKeys
  readonly read: PrefixState
  readonly current: Map<string, string>
  readonly head: ReleaseHead | undefined
  readonly gray: ActiveGray | undefined
}

export async function readReleaseState(ctx: PublishContext): Promise<ReleaseState> {
  const keys = releaseKeys(ctx.prefix)
  // At once: the transaction's guards catch a change between these reads and the write.
  const [read, head, gray] = await Promise.all([
    readPrefix(ctx.client, ctx.prefix, ctx.timeoutMs),
    readHead(ctx.client, keys, ctx.timeoutMs),
    readActiveGray(ctx.client, keys, ctx.timeoutMs),
  ])
  const current = new Map([...read.kvs].map(([key, { value }]) => [key, value]))
  return { keys, read, current, head, gray }
}

/** Refuses (CONFIG_INVALID) keys that would not satisfy the schema; `what` says who would see them. */
export function validateKeys(
  ctx: PublishContext,
  kvs: ReadonlyMap<string, string>,
  changed: string[],
  what = '',
): void {
  if (!ctx.schema) return
  // Sealed values are validated opened: their envelope text is not what the app will see.
  const tree = ctx.ring
    ? new SealedTrees(ctx.prefix, ctx.ring, () => silentLogger).build(kvs, ctx.schema)
    : buildTree(kvs, ctx.prefix, ctx.schema)
  const problems = validateLayers(ctx.schema, [...ctx.layers, tree])
  if (problems.length > 0)
    throw new ConfigError(
      'CONFIG_INVALID',
      `not published: the result${what} would not satisfy the schema: ${problems.join('; ')}`,
      { details: problems, keys: changed },
    )
}

export function conflictUnlessBasedOn(
  prefix: string,
  basedOn: string | undefined,
  head: ReleaseHead | undefined,
): void {
  if (basedOn !== undefined && basedOn !== head?.id)
    throw new ConfigError(
      'CONFIG_CONFLICT',
      `not published: it was based on release ${basedOn}, but the current release of ${prefix} is ${head?.id ?? '(none)'}; read it again and publish on top of it`,
    )
}

/** Runs the transaction of a release-changing write; CONFIG_CONFLICT if what was read changed. */
export async function commit(
  ctx: PublishContext,
  what: string,
  compare: ICompare[],
  success: IRequestOp[],
): Promise<string> {
  if (success.length > MAX_TXN_OPS || compare.length > MAX_TXN_OPS)
    throw new ConfigError(
      'CONFIG_INVALID_OPTIONS',
      `${what}: too many keys change for one etcd transaction (at most ${MAX_TXN_OPS - 5} keys per release): publish it in parts`,
    )
  const res = await withTimeout(ctx.client.kv.txn({ compare, success }), ctx.timeoutMs, () =>
    timedOut(`etcd (${what} of ${ctx.prefix})`, ctx.timeoutMs),
  )
  if (!res.succeeded)
    throw new ConfigError(
      'CONFIG_CONFLICT',
      `not published: ${ctx.prefix} changed while ${what} was being prepared (another publish, or a write outside releases); nothing was written: read it again and publish on top of it`,
    )
  return res.header.revision
}

export async function publishRelease(ctx: PublishContext, request: PublishRequest): Promise<PublishResult> {
  const read = await readReleaseState(ctx)
  const { keys, head, gray, current } = read
  conflictUnlessBasedOn(ctx.prefix, request.basedOn, head)
  if (request.endsGray && gray?.record.id !== request.endsGray.id)
    throw new ConfigError(
      'CONFIG_CONFLICT',
      `not published: gray release ${request.endsGray.id} is no longer running for ${ctx.prefix} (${gray ? `${gray.record.id} is` : 'none is'}); nothing was written`,
    )
  const next = sealSecrets(ctx, current, request.next(current))
  const changes = diffKeys(current, next)
  if (changes.length === 0) return { release: undefined, changes, previous: head?.id, revision: undefined }
  const changed = changes.map((c) => c.key)
  validateKeys(ctx, next, changed)
  // The instances of a running gray release will see these values under its overrides.
  if (gray && request.endsGray === undefined)
    validateKeys(ctx, withOverrides(next, gray.record.overrides), changed, ` as gray release ${gray.record.id} sees it`)
  const seq = (head?.seq ?? 0) + 1
  const release: Release = {
    id: `r${seq}`,
    seq,
    kind: request.kind,
    time: new Date().toISOString(),
    author: request.author ?? defaultAuthor(),
    message:
      request.message ??
      (request.restores ? `rollback to ${request.restores}` : request.promotes ? `promote ${request.promotes}` : ''),
    ...(head?.id ? { basedOn: head.id } : {}),
    ...(request.restores ? { restores: request.restores } : {}),
    ...(request.promotes ? { promotes: request.promotes } : {}),
    readRevision: read.read.revision,
    changes,
    values: Object.fromEntries([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  }
  const success = [
    ...keyWrites(changes),
    put(keys.record(seq), release),
    put(keys.head, { id: release.id, seq, graySeq: head?.graySeq ?? 0 }),
  ]
  const oldest = seq - ctx.keep + 1
  // Records older than the `keep` newest go in the same transaction: one range, however many.
  if (oldest > 1)
    success.push({
      request_delete_range: { key: Buffer.from(keys.records), range_end: Buffer.from(keys.record(oldest)) },
    })
  if (gray && request.endsGray) success.push(...request.endsGray.writes(gray, release))
  const compare = [...unchangedSince(ctx.prefix, read.read), headUnchanged(keys, head), grayUnchanged(keys, gray)]
  const revision = await commit(ctx, `release ${release.id}`, compare, success)
  return { release, changes, previous: head?.id, revision }
}

/**
 * With a key ring and a schema: every value written to a secret field (or to an object holding
 * one) is sealed, so the clear value reaches neither etcd nor the release record. Values that
 * did not change are left as stored: sealing again would make a change out of nothing.
 */
export function sealSecrets(
  ctx: PublishContext,
  current: ReadonlyMap<string, string>,
  next: Map<string, string>,
): Map<string, string> {
  const { ring, schema } = ctx
  if (!ring || !schema) return next
  for (const [key, value] of next) {
    if (current.get(key) === value || isSealed(value)) continue
    if (needsSealing(schema, keyToPath(ctx.prefix, key))) next.set(key, sealValue(ring, key, value))
  }
  return next
}

export function put(key: string, value: unknown): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(value)) } }
}

export function headUnchanged(keys: ReleaseKeys, head: ReleaseHead | undefined): ICompare {
  return head
    ? { key: Buffer.from(keys.head), target: 'Mod', result: 'Equal', mod_revision: head.modRevision }
    : { key: Buffer.from(keys.head), target: 'Version', result: 'Equal', version: '0' }
}

export function grayUnchanged(keys: ReleaseKeys, gray: ActiveGray | undefined): ICompare {
  return gray
    ? { key: Buffer.from(keys.gray), target: 'Mod', result: 'Equal', mod_revision: gray.modRevision }
    : { key: Buffer.from(keys.gray), target: 'Version', result: 'Equal', version: '0' }
}

function keyWrites(changes: readonly ReleaseChange[]): IRequestOp[] {
  return changes.map((change) =>
    change.next === undefined
      ? { request_delete_range: { key: Buffer.from(change.key) } }
      : { request_put: { key: Buffer.from(change.key), value: Buffer.from(change.next) } },
  )
}
