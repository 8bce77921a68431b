/**
 * Gray releases against the shared etcd: five client processes, a gray release to two of them,
 * promote; what each process serves, what `status` lists, and that no gray instance goes back to
 * the old values on the way. In-process: targets by label and percentage, abort.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bucketOf } from '../src/etcd/gray.js'
import { etcd, register, releases } from '../src/etcd/index.js'
import { createConfig } from '../src/index.js'
import { bundleFixture } from './helpers/bundle.js'
import { cliRunner } from './helpers/cli.js'
import { cleanUp, requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'

const endpoints = requireEtcd()
const Schema = z.object({ payment: z.object({ timeoutMs: z.number(), provider: z.string() }) })
let client: Etcd3
let bundle: { dir: string; script: string }
const children: ChildProcess[] = []

beforeAll(async () => {
  client = new Etcd3({ hosts: endpoints })
  bundle = await bundleFixture('gray-client')
})
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await cleanUp(client)
  client.close()
  rmSync(bundle.dir, { recursive: true, force: true })
})

interface Seen {
  id: string
  release: { id: string | undefined; gray: boolean }
  timeoutMs: number
}

function startClient(prefix: string, id: string, zone: string): Seen[] {
  const child = spawn(process.execPath, [bundle.script, endpoints, prefix, id, zone], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(child)
  const seen: Seen[] = []
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => seen.push(JSON.parse(line)))
  return seen
}

const latest = (seen: Seen[]) => seen.at(-1)

describe('gray releases', () => {
  it('to 2 of 5 client processes, then promoted: each serves what it should, status shows who runs what', async () => {
    const prefix = uniquePrefix('gray')
    const r = await releases({ endpoints, prefix, schema: Schema, author: 'test' })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 100, 'payment.provider': 'stripe' } })
      const ids = ['i1', 'i2', 'i3', 'i4', 'i5']
      const seen = Object.fromEntries(ids.map((id) => [id, startClient(prefix, id, id === 'i5' ? 'us' : 'eu')]))
      const serving = (id: string, release: string, gray: boolean, timeoutMs: number) => {
        const last = latest(seen[id] as Seen[])
        return last?.release.id === release && last.release.gray === gray && last.timeoutMs === timeoutMs
      }
      await waitFor(() => ids.every((id) => serving(id, 'r1', false, 100)), 'five clients on r1', 15_000)
      await waitFor(async () => (await r.instances()).filter((i) => i.release === 'r1').length === 5, 'five entries')

      const gray = await r.gray(
        { set: { 'payment.timeoutMs': 900 } },
        { targets: { instances: ['i2', 'i4'] }, message: 'slower' },
      )
      expect(gray.gray).toMatchObject({
        id: 'g1',
        basedOn: 'r1',
        status: 'active',
        overrides: { [`${prefix}payment/timeoutMs`]: '900' },
      })
      await waitFor(() => serving('i2', 'g1', true, 900) && serving('i4', 'g1', true, 900), 'i2 and i4 on g1')
      // The others stay on r1, and etcd's keys are r1's.
      for (const id of ['i1', 'i3', 'i5'])
        expect(latest(seen[id] as Seen[])).toMatchObject({ release: { id: 'r1' }, timeoutMs: 100 })
      expect(await client.get(`${prefix}payment/timeoutMs`).string()).toBe('100')
      await waitFor(async () => {
        const byRelease = (await r.instances()).map((i) => `${i.id}:${i.release}${i.gray ? '*' : ''}`)
        return byRelease.join(' ') === 'i1:r1 i2:g1* i3:r1 i4:g1* i5:r1'
      }, 'status to show i2 and i4 on g1')
      const status = await cliRunner(endpoints)(['status', '--prefix', prefix])
      expect(status.stdout).toBe(
        'r1     current: 3 instance(s): i1, i3, i5\ng1     gray, for instances i2,i4: 2 instance(s): i2, i4\n',
      )

      const promoted = await r.promote({ message: 'good' })
      expect(promoted.release).toMatchObject({ id: 'r2', kind: 'promote', promotes: 'g1', message: 'good' })
      await waitFor(() => ids.every((id) => serving(id, 'r2', false, 900)), 'all five on r2', 10_000)
      // A gray instance never went back to the old value on its way from g1 to r2.
      for (const id of ['i2', 'i4']) {
        const fromGray = (seen[id] as Seen[]).slice((seen[id] as Seen[]).findIndex((s) => s.release.id === 'g1'))
        expect(fromGray.map((s) => s.timeoutMs)).toEqual(fromGray.map(() => 900))
      }
      await waitFor(async () => (await r.instances()).every((i) => i.release === 'r2'), 'status: everyone on r2')
      expect((await cliRunner(endpoints)(['status', '--prefix', prefix])).stdout).toBe(
        'r2     current: 5 instance(s): i1, i2, i3, i4, i5\n',
      )
    } finally {
      for (const child of children.splice(0)) child.kill('SIGTERM')
      await r.close()
    }
  })

  it("with the app's own registration: its id and labels target the gray release, its metadata says which release runs", async () => {
    const prefix = uniquePrefix('gray-registration')
    const services = uniquePrefix('services')
    const r = await releases({ endpoints, prefix, schema: Schema })
    const registration = await register({
      endpoints,
      prefix: services,
      service: 'orders',
      instance: 'orders-7',
      address: 'http://10.0.0.7:8080',
      metadata: { labels: { zone: 'eu' }, version: '1.4.2' },
    })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 1, 'payment.provider': 'stripe' } })
      const config = await createConfig({ schema: Schema, sources: [etcd({ endpoints, prefix, registration })] })
      try {
        const metadata = async () =>
          JSON.parse((await client.get(`${services}orders/orders-7`).string()) ?? '{}').metadata
        await waitFor(async () => (await metadata())?.config?.release === 'r1', 'the registration to say r1')
        await r.gray({ set: { 'payment.timeoutMs': 5 } }, { targets: { labels: { zone: 'eu' } } })
        await waitFor(() => config.get('payment.timeoutMs') === 5, 'the registered instance on the gray release')
        await waitFor(async () => (await metadata())?.config?.release === 'g1', 'the registration to say g1')
        expect(await metadata()).toEqual({
          labels: { zone: 'eu' },
          version: '1.4.2',
          config: { prefix, release: 'g1', gray: true },
        })
        expect((await r.instances()).map((i) => [i.id, i.release])).toEqual([['orders-7', 'g1']])
      } finally {
        await config.close()
      }
    } finally {
      await registration.close()
      await r.close()
    }
  })

  it('by label and by percentage (stable per instance); abort sends the gray instances back', async () => {
    const prefix = uniquePrefix('gray-targets')
    const r = await releases({ endpoints, prefix, schema: Schema })
    const start = (id: string, zone: string) =>
      createConfig({ schema: Schema, sources: [etcd({ endpoints, prefix, instance: { id, labels: { zone } } })] })
    try {
      await r.publish({ set: { 'payment.timeoutMs': 1, 'payment.provider': 'stripe' } })
      const eu = await start('a', 'eu')
      const us = await start('b', 'us')
      try {
        await r.gray({ set: { 'payment.provider': 'adyen' } }, { targets: { labels: { zone: 'eu' } } })
        await waitFor(() => eu.get('payment.provider') === 'adyen', 'the eu instance on the gray release')
        expect(eu.release).toEqual({ id: 'g1', gray: true })
        expect(us.get('payment.provider')).toBe('stripe')
        expect(us.release).toEqual({ id: 'r1', gray: false })
        await r.abort({ message: 'no' })
        await waitFor(() => eu.get('payment.provider') === 'stripe', 'the eu instance back on r1')
        expect(eu.release).toEqual({ id: 'r1', gray: false })

        // 50%: exactly the instances whose bucket for g2 is below 50.
        await r.gray({ set: { 'payment.timeoutMs': 2 } }, { targets: { percent: 50 } })
        const expected = (id: string) => (bucketOf('g2', id) < 50 ? 2 : 1)
        await waitFor(
          () => eu.get('payment.timeoutMs') === expected('a') && us.get('payment.timeoutMs') === expected('b'),
          'percentage',
        )
        const ids = Array.from({ length: 1000 }, (_, i) => `host-${i}`)
        const share = ids.filter((id) => bucketOf('g2', id) < 50).length / ids.length
        expect(share).toBeGreaterThan(0.45)
        expect(share).toBeLessThan(0.55)
        // Stable, and raising the share only adds instances.
        for (const id of ids) expect(bucketOf('g2', id) < 10 ? bucketOf('g2', id) < 50 : true).toBe(true)
      } finally {
        await Promise.all([eu.close(), us.close()])
      }
      // A release is validated as gray instances would see it: refused before anything is written.
      await expect(r.publish({ set: { 'payment.timeoutMs': 'x' } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    } finally {
      await r.close()
    }
  })
})
