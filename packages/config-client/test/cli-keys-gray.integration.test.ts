/** backplane-config's sealed secrets (keygen, put, reseal) and gray releases (put --instances, promote, abort). */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { releases } from '../src/etcd/index.js'
import { etcdTestBed } from './helpers/bed.js'
import { cliRunner } from './helpers/cli.js'
import { requireEtcd, uniquePrefix } from './helpers/env.js'

const endpoints = requireEtcd()
const schema = fileURLToPath(new URL('./fixtures/app-schema.mjs', import.meta.url))
const run = cliRunner(endpoints)
const { AppConfig } = (await import(schema)) as { AppConfig: z.ZodType }
const bed = etcdTestBed('cli-keys')

describe('backplane-config keys and gray releases', () => {
  it('keygen writes a 0600 ring, put seals secret fields, get --show-secrets opens them, reseal moves them to a new key', async () => {
    const prefix = uniquePrefix('cli-keys')
    const ring = join(bed.dir, 'ring.json')
    const created = await run(['keygen', '--keys', ring])
    expect(created.stdout).toBe(
      `wrote ${ring} with key k1 (keep it secret; give it to the apps as their etcd source's keys option or BACKPLANE_CONFIG_KEYS)\n`,
    )
    expect(statSync(ring).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(ring, 'utf8'))).toMatchObject({ current: 'k1', keys: { k1: expect.any(String) } })
    const printed = await run(['keygen'])
    expect(JSON.parse(printed.stdout).keys.k1).toMatch(/^[A-Za-z0-9+/]{43}=$/)

    const base = ['--prefix', prefix, '--schema', schema, '--keys', ring]
    expect((await run(['put', 'payment.provider', 'stripe', ...base])).code).toBe(0)
    const put = await run(['put', 'payment.apiKey', 'sk-live-123456', ...base])
    expect(put.stdout).toMatch(/^published r2 /)
    const stored = (await bed.client.get(`${prefix}payment/apiKey`).string()) ?? ''
    expect(stored).not.toContain('sk-live')
    expect(JSON.parse(stored)).toMatchObject({ $sealed: 1, kid: 'k1' })
    // Neither the release record nor history shows it.
    const keysOfRecords = await bed.client.getAll().prefix('/.backplane/releases/').strings()
    expect(JSON.stringify(keysOfRecords)).not.toContain('sk-live')
    expect((await run(['get', 'payment.apiKey', ...base])).stdout).toBe('"[redacted]"\n')
    expect((await run(['get', 'payment.apiKey', ...base, '--show-secrets'])).stdout).toBe('"sk-live-123456"\n')
    // A value that does not satisfy the schema once opened is refused, sealed or not.
    const short = await run(['put', 'payment.apiKey', 'sk', ...base])
    expect(short.code).toBe(1)
    expect(short.stderr).toContain('payment.apiKey')

    const added = await run(['keygen', '--keys', ring])
    expect(added.stdout).toContain('added key k2')
    const resealed = await run(['reseal', ...base])
    expect(resealed.stdout).toMatch(
      /^published r3: resealed 1 value\(s\) and sealed 0 clear secret value\(s\) with key k2 /,
    )
    expect(JSON.parse((await bed.client.get(`${prefix}payment/apiKey`).string()) ?? '')).toMatchObject({ kid: 'k2' })
    expect((await run(['get', 'payment.apiKey', ...base, '--show-secrets'])).stdout).toBe('"sk-live-123456"\n')
    expect((await run(['reseal', ...base])).stdout).toBe(
      `nothing to reseal: every sealed value under ${prefix} uses key k2\n`,
    )
    const noRing = await run(['reseal', '--prefix', prefix, '--schema', schema])
    expect(noRing.code).toBe(2)
    expect(noRing.stderr).toContain('reseal needs the key ring')
  })

  it('put --instances starts a gray release; a second one conflicts; abort drops it; promote makes it everyone’s', async () => {
    const prefix = uniquePrefix('cli-gray')
    const base = ['--prefix', prefix, '--schema', schema]
    await run(['put', 'payment.provider', 'stripe', ...base])
    const gray = await run(['put', 'payment.timeoutMs', '900', ...base, '--instances', 'a,b', '-m', 'try 900'])
    expect(gray.stdout).toMatch(
      /^started gray release g1 for instances a,b \(put .*; 1 key\(s\) changed; revision \d+\)\n$/,
    )
    // Everyone else still reads the release's values in etcd.
    expect(await bed.client.get(`${prefix}payment/timeoutMs`).string()).toBeNull()
    const second = await run(['put', 'payment.timeoutMs', '800', ...base, '--percent', '10'])
    expect(second.code).toBe(3)
    expect(second.stderr).toContain('gray release g1 is running')
    const bad = await run(['put', 'payment.timeoutMs', '800', ...base, '--label', 'zone'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--label "zone": expected name=value')

    expect((await run(['abort', 'g9', ...base])).code).toBe(3)
    expect((await run(['abort', ...base])).stdout).toMatch(/^aborted g1: /)
    expect((await run(['promote', ...base])).stderr).toContain('no gray release is running')

    await run(['put', 'payment.timeoutMs', '700', ...base, '--label', 'zone=eu', '--percent', '50'])
    const promoted = await run(['promote', 'g2', ...base, '-m', 'looks good'])
    expect(promoted.stdout).toMatch(/^promoted g2 as release r2 \(1 key\(s\) changed; revision \d+\)\n$/)
    expect(await bed.client.get(`${prefix}payment/timeoutMs`).string()).toBe('700')

    const r = await releases({ endpoints, prefix, schema: AppConfig })
    try {
      expect((await r.history()).map((h) => [h.id, h.kind, h.promotes, h.message])).toEqual([
        ['r2', 'promote', 'g2', 'looks good'],
        ['r1', 'publish', undefined, ''],
      ])
      expect((await r.grays()).map((g) => [g.id, g.status, g.ended?.release])).toEqual([
        ['g2', 'promoted', 'r2'],
        ['g1', 'aborted', undefined],
      ])
      expect(await r.runningGray()).toBeUndefined()
    } finally {
      await r.close()
    }
  })
})
