/**
 * Releases against a real etcd: history with author, message and diff; compare-and-swap between
 * concurrent publishers; validation before anything is written; rollback, also after etcd
 * compacted its own history (on a private etcd: compacting the shared one would disturb the
 * watches of the test files running beside this one).
 */
import { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { etcd, releases } from '../src/etcd/index.js'
import { ConfigError, createConfig } from '../src/index.js'
import { cleanUp, requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { type PrivateEtcd, startPrivateEtcd } from './helpers/private-etcd.js'

const endpoints = requireEtcd()
const Schema = z.object({
  payment: z.object({ timeoutMs: z.number().int().positive(), provider: z.enum(['stripe', 'adyen']) }),
  feature: z.string().optional(),
})
let client: Etcd3
beforeAll(() => {
  client = new Etcd3({ hosts: endpoints })
})
afterAll(async () => {
  await cleanUp(client)
  client.close()
})

const codeOf = (error: unknown) => (ConfigError.is(error) ? error.code : String(error))

describe('releases', () => {
  it('publishes validated releases with author, message and diff, and lists them newest first', async () => {
    const prefix = uniquePrefix('releases')
    const r = await releases({ endpoints, prefix, schema: Schema, author: 'alice' })
    try {
      const first = await r.publish(
        { set: { 'payment.timeoutMs': 100, 'payment.provider': 'stripe' } },
        { message: 'initial' },
      )
      expect(first.release).toMatchObject({ id: 'r1', kind: 'publish', author: 'alice', message: 'initial' })
      expect(first.release?.basedOn).toBeUndefined()
      const second = await r.publish({ set: { 'payment.timeoutMs': 250 } }, { message: 'slower PSP', author: 'bob' })
      expect(second.release).toMatchObject({ id: 'r2', basedOn: 'r1', author: 'bob' })
      expect(second.changes).toEqual([{ key: `${prefix}payment/timeoutMs`, prev: '100', next: '250' }])
      expect((await client.get(`${prefix}payment/timeoutMs`).string()) ?? '').toBe('250')

      // Nothing changes: nothing is written.
      const same = await r.publish({ set: { 'payment.timeoutMs': 250 } })
      expect(same.release).toBeUndefined()
      expect(same.previous).toBe('r2')

      // Invalid: refused before anything is written, with the schema's reason.
      await expect(r.publish({ set: { 'payment.provider': 'paypal' } })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('payment.provider'),
      })
      expect(await client.get(`${prefix}payment/provider`).string()).toBe('stripe')

      const history = await r.history()
      expect(history.map((h) => [h.id, h.message])).toEqual([
        ['r2', 'slower PSP'],
        ['r1', 'initial'],
      ])
      expect(history[0]).not.toHaveProperty('values')
      const current = await r.current()
      expect(current.release?.id).toBe('r2')
      expect(current.drift).toEqual([])
      // A write outside releases shows as drift from the current release.
      await client.put(`${prefix}feature`).value('on')
      expect((await r.current()).drift).toEqual([{ key: `${prefix}feature`, next: 'on' }])
    } finally {
      await r.close()
    }
  })

  it('concurrent publishes: exactly one wins, the others get CONFIG_CONFLICT and write nothing', async () => {
    const prefix = uniquePrefix('cas')
    const publishers = await Promise.all(
      Array.from({ length: 5 }, () => releases({ endpoints, prefix, schema: Schema })),
    )
    try {
      await publishers[0]?.publish({ set: { 'payment.timeoutMs': 1, 'payment.provider': 'stripe' } })
      // All five based on r1, at once.
      const outcomes = await Promise.allSettled(
        publishers.map((p, i) => p.publish({ set: { 'payment.timeoutMs': 100 + i } }, { basedOn: 'r1' })),
      )
      const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []))
      expect(won).toHaveLength(1)
      for (const o of outcomes) if (o.status === 'rejected') expect(codeOf(o.reason)).toBe('CONFIG_CONFLICT')
      expect(await client.get(`${prefix}payment/timeoutMs`).string()).toBe(String(100 + (won[0] as number)))
      expect((await publishers[1]?.history())?.map((h) => h.id)).toEqual(['r2', 'r1'])

      // Without basedOn, racing publishers still never lose an update: each success is one release
      // on top of the one before it, and the value in etcd is the last success's.
      const race = await Promise.allSettled(
        publishers.map((p, i) => p.publish({ set: { 'payment.timeoutMs': 200 + i } }, { message: `p${i}` })),
      )
      for (const o of race) if (o.status === 'rejected') expect(codeOf(o.reason)).toBe('CONFIG_CONFLICT')
      const wins = race.flatMap((o) => (o.status === 'fulfilled' && o.value.release ? [o.value.release] : []))
      expect(wins.length).toBeGreaterThanOrEqual(1)
      const history = await publishers[0]?.history({ limit: 50 })
      expect(history?.length).toBe(2 + wins.length)
      for (let i = 0; i + 1 < (history?.length ?? 0); i++) expect(history?.[i]?.basedOn).toBe(history?.[i + 1]?.id)
      const last = history?.[0]
      const lastValue = last?.changes.find((c) => c.key.endsWith('timeoutMs'))?.next
      expect(await client.get(`${prefix}payment/timeoutMs`).string()).toBe(lastValue)
    } finally {
      await Promise.all(publishers.map((p) => p.close()))
    }
  })

  it('basedOn a release that is no longer current is a conflict', async () => {
    const prefix = uniquePrefix('based-on')
    const r = await releases({ endpoints, prefix, schema: Schema })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 1, 'payment.provider': 'stripe' } })
      await r.publish({ set: { 'payment.timeoutMs': 2 } })
      const error = await r.publish({ set: { 'payment.timeoutMs': 3 } }, { basedOn: 'r1' }).catch((e: unknown) => e)
      expect(codeOf(error)).toBe('CONFIG_CONFLICT')
      expect((error as Error).message).toContain('the current release of')
      expect(await client.get(`${prefix}payment/timeoutMs`).string()).toBe('2')
    } finally {
      await r.close()
    }
  })

  it('a running config follows a rollback like any other release', async () => {
    const prefix = uniquePrefix('follow')
    const r = await releases({ endpoints, prefix, schema: Schema })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 10, 'payment.provider': 'stripe' } })
      await r.publish({ replace: { payment: { timeoutMs: 20, provider: 'adyen' }, feature: 'x' } })
      const config = await createConfig({ schema: Schema, sources: [etcd({ endpoints, prefix })] })
      try {
        expect(config.get('payment')).toEqual({ timeoutMs: 20, provider: 'adyen' })
        const back = await r.rollback('r1')
        expect(back.release).toMatchObject({ id: 'r3', kind: 'rollback', restores: 'r1', message: 'rollback to r1' })
        await waitFor(() => config.get('payment.provider') === 'stripe', 'the rollback to reach the config')
        expect(config.get('payment.timeoutMs')).toBe(10)
        expect(config.get('feature')).toBeUndefined()
      } finally {
        await config.close()
      }
      await expect(r.rollback('r9')).rejects.toMatchObject({ code: 'CONFIG_INVALID_OPTIONS' })
    } finally {
      await r.close()
    }
  })
})

describe('releases on a private etcd', () => {
  let server: PrivateEtcd
  beforeAll(async () => {
    server = await startPrivateEtcd(23921)
  }, 60_000)
  afterAll(async () => {
    await server?.down()
  }, 60_000)

  it('rolls back after etcd compacted its history, and keeps only `keep` records', async () => {
    const prefix = '/config/compacted/'
    const raw = new Etcd3({ hosts: server.endpoint })
    const r = await releases({ endpoints: server.endpoint, prefix, schema: Schema, keep: 3 })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 1, 'payment.provider': 'stripe' } })
      for (let i = 2; i <= 4; i++) await r.publish({ set: { 'payment.timeoutMs': i, feature: `f${i}` } })
      const revision = (await raw.get(`${prefix}payment/timeoutMs`).exec()).header.revision
      await raw.kv.compact({ revision, physical: true })
      // etcd's own history of the key is gone...
      await expect(
        raw
          .get(`${prefix}payment/timeoutMs`)
          .revision(String(Number(revision) - 3))
          .string(),
      ).rejects.toThrow(/compacted/)
      // ...ours is not: r2 comes back whole.
      const back = await r.rollback('r2')
      expect(back.release?.id).toBe('r5')
      expect(await raw.get(`${prefix}payment/timeoutMs`).string()).toBe('2')
      expect(await raw.get(`${prefix}feature`).string()).toBe('f2')
      expect((await r.history({ limit: 10 })).map((h) => h.id)).toEqual(['r5', 'r4', 'r3'])
      await expect(r.rollback('r1')).rejects.toMatchObject({ code: 'CONFIG_INVALID_OPTIONS' })
    } finally {
      await r.close()
      raw.close()
    }
  })
})
