/** The `backplane-config` commands of sealed secrets: keygen (a key ring file) and reseal (a release). */
import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { type CliContext, type CliIo, publishContext, UsageError } from './cli-common.js'
import { publishRelease } from './etcd/publish.js'
import { resealValues } from './etcd/reseal.js'
import { formatKeyRing, generateKey, type KeyRing, loadKeyRing, parseKeyRing } from './sealing/key-ring.js'

/** The ring from --keys (a file, or the ring's JSON), else from BACKPLANE_CONFIG_KEYS in `env`. */
export function ringOf(
  keys: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): KeyRing | undefined {
  const spec = (keys ?? env.BACKPLANE_CONFIG_KEYS)?.trim()
  if (!spec) return undefined
  return spec.startsWith('{') ? parseKeyRing(spec, 'the key ring') : loadKeyRing({ file: spec })
}

const KID = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * Without --keys: prints a new ring with one key. With --keys FILE: adds a key to the ring in FILE
 * (creating it), makes it the current one and writes the file (mode 0600) without printing keys.
 */
export function keygen(values: Record<string, unknown>, io: CliIo): number {
  const file = values.keys as string | undefined
  const existing = file !== undefined && existsSync(file) ? loadKeyRing({ file }) : undefined
  const kid = (values.kid as string | undefined) ?? nextKid(existing)
  if (!KID.test(kid)) throw new UsageError(`--kid "${kid}": expected 1 to 64 letters, digits, _ . or -`)
  if (existing?.keys[kid]) throw new UsageError(`--kid "${kid}": the ring in ${file} already has that key`)
  const keys = Object.fromEntries(Object.entries(existing?.keys ?? {}).map(([k, v]) => [k, v.toString('base64')]))
  const ring = parseKeyRing({ current: kid, keys: { ...keys, [kid]: generateKey() } }, 'the new key ring')
  if (file === undefined) {
    io.stdout.write(formatKeyRing(ring))
    return 0
  }
  // Written beside and renamed over: a crash mid-write must not leave a ring without its old keys.
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, formatKeyRing(ring), { mode: 0o600 })
  renameSync(temporary, file)
  io.stdout.write(
    existing
      ? `added key ${kid} to ${file}; it is now the current key (run backplane-config reseal to seal existing values with it)\n`
      : `wrote ${file} with key ${kid} (keep it secret; give it to the apps as their etcd source's keys option or BACKPLANE_CONFIG_KEYS)\n`,
  )
  return 0
}

function nextKid(ring: KeyRing | undefined): string {
  let n = Object.keys(ring?.keys ?? {}).length + 1
  while (ring?.keys[`k${n}`]) n++
  return `k${n}`
}

/** Seals every sealed value again with the current key (and, with --schema, secret fields in clear), as a release. */
export async function reseal(ctx: CliContext, args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError('expected: backplane-config reseal')
  const ring = ctx.ring
  if (!ring) throw new UsageError('reseal needs the key ring: pass --keys FILE or set BACKPLANE_CONFIG_KEYS')
  let counts = { resealed: 0, sealed: 0 }
  const result = await publishRelease(await publishContext(ctx, 'reseal'), {
    kind: 'publish',
    author: ctx.values.author as string | undefined,
    message: (ctx.values.message as string | undefined) ?? `reseal with key ${ring.current}`,
    basedOn: ctx.values['based-on'] as string | undefined,
    next: (current) => {
      const writes = resealValues(current, ctx.prefix, ring, ctx.schema)
      counts = {
        resealed: writes.filter((w) => w.wasSealed).length,
        sealed: writes.filter((w) => !w.wasSealed).length,
      }
      const next = new Map(current)
      for (const w of writes) next.set(w.key, w.value)
      return next
    },
  })
  ctx.io.stdout.write(
    result.release
      ? `published ${result.release.id}: resealed ${counts.resealed} value(s) and sealed ${counts.sealed} clear secret value(s) with key ${ring.current} (revision ${result.revision})\n`
      : `nothing to reseal: every sealed value under ${ctx.prefix} uses key ${ring.current}\n`,
  )
  return 0
}
