/** The `backplane-config` commands that publish releases or read them: put, delete, apply, history, show, rollback. */
import { z } from 'zod'
import { arity, type CliContext, format, json, positiveInt, publishContext, shown, UsageError } from './cli-common.js'
import { describeTargets, grayTargets } from './cli-gray.js'
import { ConfigError } from './errors.js'
import { loadLayers } from './etcd/admin.js'
import { type GrayResult, startGray } from './etcd/gray-ops.js'
import { decodeValue, keyToPath } from './etcd/keys.js'
import { type PublishRequest, type PublishResult, publishRelease } from './etcd/publish.js'
import { applyChanges, type ReleaseChange, type ReleaseChanges } from './etcd/release-plan.js'
import { listReleases, type Release, readRelease, releaseKeys } from './etcd/release-store.js'
import { schemaAt } from './schema.js'
import { isSealed, openValue } from './sealing/envelope.js'
import { file } from './sources/file.js'
import { splitPath } from './tree.js'

const text = (value: unknown) => (typeof value === 'string' ? value : undefined)

function dottedPath(arg: string): string {
  const path = splitPath(arg)
  if (path.length === 0 || path.some((p) => p === '' || p.includes('/')))
    throw new UsageError(`path "${arg}": expected a dotted path such as payment.timeoutMs`)
  return arg
}

/** Publishes `next` as a release, or (with --instances, --label or --percent) starts a gray release. */
async function publish(
  ctx: CliContext,
  what: string,
  request: Omit<PublishRequest, 'author' | 'message' | 'basedOn'>,
): Promise<PublishResult | { gray: GrayResult }> {
  const common = {
    author: text(ctx.values.author),
    message: text(ctx.values.message),
    basedOn: text(ctx.values['based-on']),
  }
  const targets = grayTargets(ctx)
  if (targets) {
    if (request.kind !== 'publish') throw new UsageError(`${what} cannot be a gray release`)
    return { gray: await startGray(await publishContext(ctx, what), { ...common, targets, next: request.next }) }
  }
  return publishRelease(await publishContext(ctx, what), { ...request, ...common })
}

function report(ctx: CliContext, outcome: PublishResult | { gray: GrayResult }, what: string): number {
  if ('gray' in outcome && !('release' in outcome)) {
    const { gray, revision } = outcome.gray
    ctx.io.stdout.write(
      gray
        ? `started gray release ${gray.id} for ${describeTargets(gray.targets)} (${what}; ${gray.changes.length} key(s) changed; revision ${revision})\n`
        : `nothing to publish: ${ctx.prefix} already holds these values\n`,
    )
    return 0
  }
  const result = outcome as PublishResult
  if (!result.release) {
    ctx.io.stdout.write(
      `nothing to publish: ${ctx.prefix} already holds these values (release ${result.previous ?? '(none)'})\n`,
    )
    return 0
  }
  const { release } = result
  ctx.io.stdout.write(
    `published ${release.id} (${what}; ${release.changes.length} key(s) changed; revision ${result.revision})\n`,
  )
  return 0
}

/** `put <path> <value>` and `delete <path>`: one change, published as a release. */
export async function putOrDelete(ctx: CliContext, args: string[], mode: 'put' | 'delete'): Promise<number> {
  if (mode === 'put') arity(args, 2, 'put <path> <value>')
  else arity(args, 1, 'delete <path>')
  const path = dottedPath(args[0] as string)
  const changes: ReleaseChanges = mode === 'put' ? { set: { [path]: args[1] as string } } : { delete: [path] }
  const key = `${ctx.prefix}${splitPath(path).join('/')}`
  if (mode === 'delete') {
    const result = await publish(ctx, mode, {
      kind: 'publish',
      next: (current) => {
        const next = applyChanges(current, ctx.prefix, changes)
        if (next.size === current.size)
          throw new ConfigError('CONFIG_INVALID_OPTIONS', `nothing to delete: no key at or under ${key}`)
        return next
      },
    })
    return report(ctx, result, `deleted at ${key}`)
  }
  const result = await publish(ctx, mode, {
    kind: 'publish',
    next: (current) => applyChanges(current, ctx.prefix, changes),
  })
  return report(ctx, result, `put ${key}`)
}

/** `apply <file>`: the prefix becomes exactly the file's values (one key per leaf). */
export async function apply(ctx: CliContext, args: string[]): Promise<number> {
  arity(args, 1, 'apply <file>')
  const [tree] = await loadLayers([file(args[0] as string, { watch: false })], ctx.schema ?? z.unknown())
  const changes: ReleaseChanges = { replace: tree ?? {} }
  const result = await publish(ctx, 'apply', {
    kind: 'publish',
    next: (current) => applyChanges(current, ctx.prefix, changes),
  })
  return report(ctx, result, `applied ${args[0]}`)
}

export async function rollback(ctx: CliContext, args: string[]): Promise<number> {
  arity(args, 1, 'rollback <release>')
  const id = args[0] as string
  const target = await readRelease(ctx.connection.client, releaseKeys(ctx.prefix), id, ctx.timeoutMs)
  if (!target)
    throw new ConfigError(
      'CONFIG_INVALID_OPTIONS',
      `no release ${JSON.stringify(id)} is kept for ${ctx.prefix}: backplane-config history lists them`,
    )
  const result = await publish(ctx, 'rollback', {
    kind: 'rollback',
    restores: target.id,
    next: () => new Map(Object.entries(target.values)),
  })
  return report(ctx, result, `rollback to ${target.id}`)
}

function summaryLine(release: Release): string {
  const restores = release.restores ? ` (restores ${release.restores})` : ''
  const message = release.message ? `  ${release.message}` : ''
  return `${release.id.padEnd(6)} ${release.time}  ${release.author}  ${release.kind}${restores}  ${release.changes.length} change(s)${message}`
}

export async function history(ctx: CliContext, args: string[]): Promise<number> {
  arity(args, 0, 'history')
  const limit = positiveInt('--limit', ctx.values.limit) ?? 20
  const list = await listReleases(ctx.connection.client, releaseKeys(ctx.prefix), limit, ctx.timeoutMs)
  if (ctx.values.json) ctx.io.stdout.write(`${json(list.map(({ values: _v, ...r }) => redactChanges(ctx, r)))}\n`)
  else if (list.length === 0) ctx.io.stdout.write(`no releases under ${ctx.prefix} yet\n`)
  else for (const release of list) ctx.io.stdout.write(`${summaryLine(release)}\n`)
  return 0
}

/** A release's changes as the app sees them: decoded with the schema, sealed values opened, secrets hidden. */
function redactChanges<R extends { changes: readonly ReleaseChange[] }>(ctx: CliContext, release: R): R {
  const view = (key: string, path: string[], stored: string | undefined) => {
    if (stored === undefined || !ctx.schema) return stored === undefined ? {} : { value: stored }
    const text = ctx.ring && isSealed(stored) && ctx.values['show-secrets'] ? openValue(ctx.ring, key, stored) : stored
    return { value: shown(ctx, path, decodeValue(schemaAt(ctx.schema, path), text)) }
  }
  return {
    ...release,
    changes: release.changes.map((c) => {
      const path = keyToPath(ctx.prefix, c.key)
      const prev = view(c.key, path, c.prev)
      const next = view(c.key, path, c.next)
      return {
        key: c.key,
        ...('value' in prev ? { prev: prev.value } : {}),
        ...('value' in next ? { next: next.value } : {}),
      }
    }),
  }
}

export async function show(ctx: CliContext, args: string[]): Promise<number> {
  arity(args, 1, 'show <release>')
  const release = await readRelease(ctx.connection.client, releaseKeys(ctx.prefix), args[0] as string, ctx.timeoutMs)
  if (!release) {
    ctx.io.stderr.write(`backplane-config: no release ${JSON.stringify(args[0])} is kept for ${ctx.prefix}\n`)
    return 1
  }
  const { values: _values, ...rest } = release
  const redacted = redactChanges(ctx, rest)
  if (ctx.values.json) {
    ctx.io.stdout.write(`${json(redacted)}\n`)
    return 0
  }
  ctx.io.stdout.write(`${summaryLine(release)}\n`)
  ctx.io.stdout.write(`based on ${release.basedOn ?? '(none)'}, read at revision ${release.readRevision}\n`)
  for (const change of redacted.changes) {
    const path = keyToPath(ctx.prefix, change.key).join('.')
    const line =
      change.prev === undefined
        ? `+ ${path}: ${format(change.next)}`
        : change.next === undefined
          ? `- ${path}: ${format(change.prev)}`
          : `~ ${path}: ${format(change.prev)} -> ${format(change.next)}`
    ctx.io.stdout.write(`${line}\n`)
  }
  return 0
}
