/** The `backplane-config` commands of gray releases and of what runs where: promote, abort, status. */
import { arity, type CliContext, json, publishContext, UsageError } from './cli-common.js'
import type { GrayRelease, GrayTargets } from './etcd/gray.js'
import { abortGray, promoteGray } from './etcd/gray-ops.js'
import { readActiveGray } from './etcd/gray-store.js'
import { readInstances } from './etcd/instance-status.js'
import { readHead, releaseKeys } from './etcd/release-store.js'

/** The gray targets the flags name, or undefined for a release to everyone. */
export function grayTargets(ctx: CliContext): GrayTargets | undefined {
  const instances = ctx.values.instances as string | undefined
  const labels = (ctx.values.label as string[] | undefined) ?? []
  const percent = ctx.values.percent as string | undefined
  if (instances === undefined && labels.length === 0 && percent === undefined) return undefined
  const targets: GrayTargets = {}
  if (instances !== undefined) {
    targets.instances = instances.split(',').map((id) => id.trim())
    if (targets.instances.some((id) => id === ''))
      throw new UsageError(`--instances "${instances}": expected instance ids separated by commas`)
  }
  if (labels.length > 0)
    targets.labels = Object.fromEntries(
      labels.map((label) => {
        const at = label.indexOf('=')
        if (at <= 0) throw new UsageError(`--label "${label}": expected name=value, e.g. zone=eu-west-1`)
        return [label.slice(0, at), label.slice(at + 1)]
      }),
    )
  if (percent !== undefined) {
    const n = Number(percent)
    if (!(n > 0 && n <= 100)) throw new UsageError(`--percent "${percent}": expected a number above 0 and at most 100`)
    targets.percent = n
  }
  return targets
}

export function describeTargets(targets: GrayTargets): string {
  const parts: string[] = []
  if (targets.instances?.length) parts.push(`instances ${targets.instances.join(',')}`)
  const labels = Object.entries(targets.labels ?? {})
  if (labels.length > 0) parts.push(`labels ${labels.map(([k, v]) => `${k}=${v}`).join(',')}`)
  if (targets.percent !== undefined) parts.push(`${targets.percent}% of instances`)
  return parts.join(' or ')
}

const endOptions = (ctx: CliContext, args: string[]) => ({
  id: args[0],
  author: ctx.values.author as string | undefined,
  message: ctx.values.message as string | undefined,
})

export async function promote(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length > 1) throw new UsageError('expected: backplane-config promote [gray-release]')
  const result = await promoteGray(await publishContext(ctx, 'promote'), endOptions(ctx, args))
  ctx.io.stdout.write(
    result.release
      ? `promoted ${result.gray.id} as release ${result.release.id} (${result.changes.length} key(s) changed; revision ${result.revision})\n`
      : `ended ${result.gray.id}: everyone already ran its values\n`,
  )
  return 0
}

export async function abort(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length > 1) throw new UsageError('expected: backplane-config abort [gray-release]')
  const result = await abortGray(await publishContext(ctx, 'abort'), endOptions(ctx, args))
  ctx.io.stdout.write(
    `aborted ${result.gray.id}: its instances are back on the current release (revision ${result.revision})\n`,
  )
  return 0
}

/** Per release, the instances running it. */
export async function status(ctx: CliContext, args: string[]): Promise<number> {
  arity(args, 0, 'status')
  const keys = releaseKeys(ctx.prefix)
  const [head, gray, instances] = await Promise.all([
    readHead(ctx.connection.client, keys, ctx.timeoutMs),
    readActiveGray(ctx.connection.client, keys, ctx.timeoutMs),
    readInstances(ctx.connection.client, keys, ctx.timeoutMs),
  ])
  const running = (id: string | undefined) => instances.filter((i) => i.release === id).map((i) => i.id)
  const rows: { release: string; role: string; instances: string[] }[] = []
  if (head?.id) rows.push({ release: head.id, role: 'current', instances: running(head.id) })
  if (gray) rows.push({ release: gray.record.id, role: grayRole(gray.record), instances: running(gray.record.id) })
  const known = new Set(rows.map((r) => r.release))
  for (const instance of instances)
    if (!known.has(instance.release ?? '(none)')) {
      known.add(instance.release ?? '(none)')
      rows.push({ release: instance.release ?? '(none)', role: 'not current', instances: running(instance.release) })
    }
  if (ctx.values.json) {
    ctx.io.stdout.write(`${json({ current: head?.id, gray: gray?.record, releases: rows, instances })}\n`)
    return 0
  }
  if (rows.length === 0) ctx.io.stdout.write(`no releases and no instances reporting under ${ctx.prefix}\n`)
  for (const row of rows)
    ctx.io.stdout.write(
      `${row.release.padEnd(6)} ${row.role}: ${row.instances.length} instance(s)${row.instances.length ? `: ${row.instances.join(', ')}` : ''}\n`,
    )
  return 0
}

function grayRole(gray: GrayRelease): string {
  return `gray, for ${describeTargets(gray.targets)}`
}
