/**
 * Faults: etcd down at start, etcd killed and restarted, compaction while disconnected. They run
 * against a PRIVATE etcd (scripts/services.sh on port 23891 with its own state dir): killing or
 * compacting the shared one would disturb the other test files running in parallel.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { discover, etcd, register } from '../src/etcd/index.js'
import { type ChangeEvent, ConfigError, createConfig, file } from '../src/index.js'
import { requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { type PrivateEtcd, startPrivateEtcd } from './helpers/private-etcd.js'
import { TcpProxy } from './helpers/proxy.js'
import { AppConfig, expectedFromEtcd } from './helpers/schema.js'

requireEtcd() // the suite runs under `npm test` like every other; its own etcd comes on top
const PORT = 23891
let server: PrivateEtcd
let client: Etcd3
let dir: string
const open: { close(): Promise<void> }[] = []

function recordingLogger() {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = []
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, message, fields })
  }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

beforeAll(async () => {
  server = await startPrivateEtcd(PORT)
  client = new Etcd3({ hosts: server.endpoint })
  dir = mkdtempSync(join(tmpdir(), 'config-client-faults-'))
}, 60_000)
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
})
afterAll(async () => {
  client?.close()
  await server?.down()
  rmSync(dir, { recursive: true, force: true })
}, 60_000)

describe('etcd faults (private etcd)', () => {
  it('etcd down at start: starts from the snapshot, stale, then loads etcd and emits the difference when it is back', async () => {
    const prefix = uniquePrefix('offline')
    const snapshot = join(dir, 'offline', 'orders-config.json')
    const yaml = join(dir, 'offline.yaml')
    writeFileSync(yaml, 'service: from-file\npayment:\n  retries: 1\n')
    const sources = () => [file(yaml), etcd({ endpoints: server.endpoint, prefix, timeout: 800 })]

    // A first run writes the snapshot.
    await client.put(`${prefix}payment/timeoutMs`).value('1111')
    const first = await createConfig({ schema: AppConfig, sources: sources(), snapshot })
    await waitFor(() => readFileSync(snapshot, 'utf8').includes('1111'), 'the snapshot')
    await first.close()
    // etcd moves on while no app runs, then dies.
    await client.put(`${prefix}payment/timeoutMs`).value('2222')
    await client.put(`${prefix}payment/provider`).value('adyen')
    await server.kill()

    // The file changed too: the stale start takes today's file and etcd's part from the snapshot.
    writeFileSync(yaml, 'service: from-file-v2\npayment:\n  retries: 2\n')
    const { lines, logger } = recordingLogger()
    const started = Date.now()
    const config = await createConfig({
      schema: AppConfig,
      sources: sources(),
      snapshot,
      startTimeout: 1_000,
      retry: { initialDelay: 200, maxDelay: 500 },
      logger,
    })
    open.push(config)
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(config.stale).toBe(true)
    expect(config.unavailable).toEqual([`etcd:${prefix}`])
    expect(config.get()).toEqual({
      service: 'from-file-v2',
      payment: { timeoutMs: 1111, provider: 'stripe', retries: 2 },
      features: {},
    })
    expect(lines.some((l) => l.level === 'warn' && /serving their values from the snapshot/.test(l.message))).toBe(true)

    const events: ChangeEvent<AppConfig>[] = []
    const stale: boolean[] = []
    config.on('change', (e) => events.push(e))
    config.on('stale', (e) => stale.push(e.stale))
    await server.up()
    await waitFor(() => !config.stale, 'the recovery', 20_000)
    expect(config.get('payment')).toEqual({ timeoutMs: 2222, provider: 'adyen', retries: 2 })
    expect(events).toHaveLength(1)
    expect(events[0]?.changes).toEqual([
      { path: 'payment.timeoutMs', kind: 'update', prev: 1111, next: 2222, secret: false },
      { path: 'payment.provider', kind: 'update', prev: 'stripe', next: 'adyen', secret: false },
    ])
    expect(stale).toEqual([false])

    // And it watches from then on.
    await client.put(`${prefix}payment/timeoutMs`).value('3333')
    await waitFor(() => config.get('payment.timeoutMs') === 3333, 'a put after the recovery')
    await waitFor(() => readFileSync(snapshot, 'utf8').includes('3333'), 'the snapshot after the recovery')
  })

  it('etcd down at start without a snapshot: CONFIG_UNAVAILABLE, or defaults with allowDefaultsOnly until etcd is back', async () => {
    const prefix = uniquePrefix('defaults')
    await client.put(`${prefix}payment/retries`).value('9')
    await server.kill()
    try {
      const error = await createConfig({
        schema: AppConfig,
        sources: [etcd({ endpoints: server.endpoint, prefix, timeout: 500 })],
        snapshot: join(dir, 'never-written.json'),
        startTimeout: 500,
      }).catch((e: unknown) => e)
      expect(ConfigError.is(error) && error.code).toBe('CONFIG_UNAVAILABLE')
      expect((error as Error).message).toContain(`there is no snapshot at ${join(dir, 'never-written.json')} yet`)

      const config = await createConfig({
        schema: AppConfig,
        sources: [etcd({ endpoints: server.endpoint, prefix, timeout: 500 })],
        startTimeout: 500,
        allowDefaultsOnly: true,
        retry: { initialDelay: 200, maxDelay: 400 },
      })
      open.push(config)
      expect(config.stale).toBe(true)
      expect(config.get('payment.retries')).toBe(3)
      await server.up()
      await waitFor(() => !config.stale && config.get('payment.retries') === 9, 'etcd values after recovery', 20_000)
    } finally {
      await server.up()
    }
  })

  it('a running config survives etcd being killed and restarted: stale meanwhile, then every write applied', async () => {
    const prefix = uniquePrefix('restart')
    const config = await createConfig({
      schema: AppConfig,
      sources: [etcd({ endpoints: server.endpoint, prefix, timeout: 800, retry: { maxDelay: 500 } })],
    })
    open.push(config)
    await server.kill()
    await waitFor(() => config.stale, 'the config to notice')
    expect(config.get('payment.retries')).toBe(3) // still served
    await server.up()
    await waitFor(() => !config.stale, 'the reconnect', 20_000)
    await client.put(`${prefix}payment/retries`).value('4')
    await waitFor(() => config.get('payment.retries') === 4, 'a write after the restart')
  })

  it('compaction while disconnected: the watch is cancelled, the prefix re-listed and diffed, and the final state equals etcd', async () => {
    const prefix = uniquePrefix('compact')
    const proxy = await TcpProxy.start(server.endpoint)
    open.push(proxy)
    const { lines, logger } = recordingLogger()
    await client.put(`${prefix}features/keep`).value('true')
    await client.put(`${prefix}features/gone`).value('true')
    const config = await createConfig({
      schema: AppConfig,
      sources: [etcd({ endpoints: proxy.endpoint, prefix, timeout: 800 })],
      logger,
    })
    open.push(config)
    await client.put(`${prefix}features/keep`).value('false')
    await waitFor(() => config.get('features').keep === false, 'the watch to deliver')
    const events: ChangeEvent<AppConfig>[] = []
    config.on('change', (e) => events.push(e))

    proxy.cut({ block: true })
    await waitFor(() => config.stale, 'the config to notice the cut')
    for (let i = 0; i < 20; i++) await client.put(`${prefix}features/n${i % 5}`).value(String(i))
    await client.delete().key(`${prefix}features/gone`)
    await client.put(`${prefix}payment/provider`).value('adyen')
    const last = await client.put(`${prefix}payment/timeoutMs`).value('4321').exec()
    await client.kv.compact({ revision: last.header.revision, physical: true })
    proxy.unblock()

    await waitFor(() => !config.stale && config.get('payment.timeoutMs') === 4321, 'the re-list', 20_000)
    const expected = await expectedFromEtcd(client, prefix)
    expect(config.get()).toEqual(expected)
    expect(config.get('features')).toEqual({ keep: false, n0: 15, n1: 16, n2: 17, n3: 18, n4: 19 })
    expect(config.revision).toBe(Number(last.header.revision))
    expect(lines.some((l) => /cancelled the watch \(revision compacted\?\)/.test(l.message))).toBe(true)
    expect(events).toHaveLength(1)
    expect(events[0]?.changes.map((c) => `${c.kind} ${c.path}`).sort()).toEqual([
      'add features.n0',
      'add features.n1',
      'add features.n2',
      'add features.n3',
      'add features.n4',
      'remove features.gone',
      'update payment.provider',
      'update payment.timeoutMs',
    ])

    // Watching goes on from the re-listed revision.
    await client.put(`${prefix}features/after`).value('true')
    await waitFor(() => config.get('features').after === true, 'a put after the re-list')
  })

  it('a registration whose lease is lost while etcd is down registers again when etcd is back', async () => {
    const prefix = uniquePrefix('lease')
    const registration = await register({
      endpoints: server.endpoint,
      prefix,
      service: 'orders',
      instance: 'a',
      address: 'http://127.0.0.1:9001',
      ttl: 1,
      timeout: 500,
    })
    open.push(registration)
    const events: string[] = []
    registration.on('lost', () => events.push('lost'))
    registration.on('registered', () => events.push('registered'))
    await server.kill()
    await waitFor(() => events.includes('lost'), 'the lease to be lost', 10_000)
    expect(registration.registered).toBe(false)
    await server.up()
    await waitFor(() => events.at(-1) === 'registered', 'the re-registration', 20_000)
    expect(registration.registered).toBe(true)
    const discovery = await discover('orders', { endpoints: server.endpoint, prefix })
    open.push(discovery)
    // Longer than the old lease could survive: the key is held by the new lease.
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    expect(discovery.instances().map((i) => i.instance)).toEqual(['a'])
  })
})
