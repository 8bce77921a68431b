/**
 * Starting, promoting and aborting a gray release. Each is one transaction guarded like a publish:
 * the keys, the current release and the running gray release must be as read.
 */
import { ConfigError } from '../errors.js'
import { parseOptions } from '../options.js'
import { unchangedSince } from './admin.js'
import { type GrayRelease, type GrayTargets, grayTargetsSchema, overridesBetween, withOverrides } from './gray.js'
import {
  commit,
  conflictUnlessBasedOn,
  defaultAuthor,
  grayUnchanged,
  headUnchanged,
  type PublishContext,
  type PublishResult,
  publishRelease,
  put,
  readReleaseState,
  sealSecrets,
  validateKeys,
} from './publish.js'
import { diffKeys } from './release-plan.js'
import { releaseKeys } from './release-store.js'

export interface GrayRequest {
  targets: GrayTargets
  author?: string | undefined
  message?: string | undefined
  basedOn?: string | undefined
  /** The keys gray instances see, from the current keys. */
  next(current: ReadonlyMap<string, string>): Map<string, string>
}

export interface GrayResult {
  /** The gray release started; undefined when its changes change nothing. */
  gray: GrayRelease | undefined
  revision: string | undefined
}

const noGray = (prefix: string, what: string) =>
  new ConfigError('CONFIG_INVALID_OPTIONS', `${what}: no gray release is running for ${prefix}`)

function checkId(prefix: string, what: string, gray: GrayRelease, id: string | undefined): void {
  if (id !== undefined && id !== gray.id)
    throw new ConfigError(
      'CONFIG_CONFLICT',
      `${what} ${id}: the gray release running for ${prefix} is ${gray.id}, not ${id}; nothing was written`,
    )
}

export async function startGray(ctx: PublishContext, request: GrayRequest): Promise<GrayResult> {
  const targets = parseOptions(grayTargetsSchema, request.targets, 'gray release targets')
  const state = await readReleaseState(ctx)
  const { keys, head, gray, current } = state
  conflictUnlessBasedOn(ctx.prefix, request.basedOn, head)
  if (gray)
    throw new ConfigError(
      'CONFIG_CONFLICT',
      `gray release ${gray.record.id} is running for ${ctx.prefix}: promote or abort it before starting another`,
    )
  const next = sealSecrets(ctx, current, request.next(current))
  const changes = diffKeys(current, next)
  if (changes.length === 0) return { gray: undefined, revision: undefined }
  validateKeys(
    ctx,
    next,
    changes.map((c) => c.key),
    ' as the gray instances see it',
  )
  const seq = (head?.graySeq ?? 0) + 1
  const record: GrayRelease = {
    id: `g${seq}`,
    seq,
    status: 'active',
    time: new Date().toISOString(),
    author: request.author ?? defaultAuthor(),
    message: request.message ?? '',
    ...(head?.id ? { basedOn: head.id } : {}),
    targets,
    overrides: overridesBetween(current, next),
    changes,
  }
  const revision = await commit(
    ctx,
    `gray release ${record.id}`,
    [...unchangedSince(ctx.prefix, state.read), headUnchanged(keys, head), grayUnchanged(keys, undefined)],
    [
      put(keys.gray, record),
      put(keys.grayRecord(seq), record),
      put(keys.head, { ...(head?.id ? { id: head.id } : {}), seq: head?.seq ?? 0, graySeq: seq }),
    ],
  )
  return { gray: record, revision }
}

/** Publishes the running gray release's values as the release for everyone (kind `promote`). */
export async function promoteGray(
  ctx: PublishContext,
  options: { id?: string | undefined; author?: string | undefined; message?: string | undefined },
): Promise<PublishResult & { gray: GrayRelease }> {
  const { gray } = await readReleaseState(ctx)
  if (!gray) throw noGray(ctx.prefix, 'promote')
  checkId(ctx.prefix, 'promote', gray.record, options.id)
  const author = options.author ?? defaultAuthor()
  const ended = { time: new Date().toISOString(), author }
  let promoted: GrayRelease = gray.record
  const result = await publishRelease(ctx, {
    kind: 'promote',
    author,
    message: options.message,
    promotes: gray.record.id,
    next: (current) => withOverrides(current, gray.record.overrides),
    endsGray: {
      id: gray.record.id,
      writes: (running, release) => {
        promoted = { ...running.record, status: 'promoted', ended: { ...ended, release: release.id } }
        return [
          { request_delete_range: { key: Buffer.from(releaseKeys(ctx.prefix).gray) } },
          put(releaseKeys(ctx.prefix).grayRecord(running.record.seq), promoted),
        ]
      },
    },
  })
  if (!result.release) {
    // Its values are everyone's already (published meanwhile): the gray release just ends.
    await abortGray(ctx, { id: gray.record.id, author, message: options.message })
  }
  return { ...result, gray: promoted }
}

/** Drops the running gray release: its instances go back to the current release's values. */
export async function abortGray(
  ctx: PublishContext,
  options: { id?: string | undefined; author?: string | undefined; message?: string | undefined },
): Promise<{ gray: GrayRelease; revision: string }> {
  const { keys, gray, head } = await readReleaseState(ctx)
  if (!gray) throw noGray(ctx.prefix, 'abort')
  checkId(ctx.prefix, 'abort', gray.record, options.id)
  const aborted: GrayRelease = {
    ...gray.record,
    status: 'aborted',
    ended: { time: new Date().toISOString(), author: options.author ?? defaultAuthor() },
    ...(options.message
      ? { message: `${gray.record.message}${gray.record.message ? '; ' : ''}abort: ${options.message}` }
      : {}),
  }
  const revision = await commit(
    ctx,
    `abort of gray release ${gray.record.id}`,
    [headUnchanged(keys, head), grayUnchanged(keys, gray)],
    [{ request_delete_range: { key: Buffer.from(keys.gray) } }, put(keys.grayRecord(gray.record.seq), aborted)],
  )
  return { gray: aborted, revision }
}
