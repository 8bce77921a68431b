/**
 * The etcd source against the shared etcd of scripts/services.sh (each test under its own prefix).
 * Connection cuts go through a TCP proxy in front of it, so etcd itself is never disturbed.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { etcd } from '../src/etcd/index.js'
import {
  type ChangeEvent,
  type Config,
  ConfigError,
  type CreateConfigOptions,
  createConfig,
  memory,
} from '../src/index.js'
import { etcdTestBed } from './helpers/bed.js'
import { requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { TcpProxy } from './helpers/proxy.js'
import { AppConfig, expectedFromEtcd } from './helpers/schema.js'

const endpoints = requireEtcd()
const bed = etcdTestBed('etcd')

async function start(
  prefix: string,
  extra: Omit<CreateConfigOptions<typeof AppConfig>, 'schema' | 'sources'> = {},
  hosts = endpoints,
) {
  const config = await createConfig({
    schema: AppConfig,
    sources: [memory({ service: 'orders-base' }), etcd({ endpoints: hosts, prefix, timeout: '2s' })],
    ...extra,
  })
  bed.open.push(config)
  return config
}

function nextChange<T>(config: Config<T>): Promise<ChangeEvent<T>> {
  return new Promise((resolve) => config.once('change', resolve))
}

describe('etcd source', () => {
  it('loads keys under the prefix as paths, coerces text, and maps a JSON key to a subtree', async () => {
    const prefix = uniquePrefix('load')
    await bed.client.put(`${prefix}payment/timeoutMs`).value('2500') // as `etcdctl put` writes it
    await bed.client.put(`${prefix}features`).value(JSON.stringify({ newCheckout: true, maxItems: 50 }))
    await bed.client.put(`${prefix}features/darkMode`).value('false') // a deeper key wins over the JSON one
    const config = await start(prefix)
    expect(config.get()).toEqual({
      service: 'orders-base',
      payment: { timeoutMs: 2500, provider: 'stripe', retries: 3 },
      features: { newCheckout: true, maxItems: 50, darkMode: false },
    })
    expect(config.get('payment.timeoutMs')).toBe(2500)
    expect(config.revision).toBeGreaterThan(0)
    expect(config.stale).toBe(false)
    expect(Object.isFrozen(config.get('payment'))).toBe(true)
  })

  it('put → change event with old and new values, revision and key; path watchers see their subtree', async () => {
    const prefix = uniquePrefix('put')
    const config = await start(prefix)
    const seen: [unknown, unknown][] = []
    config.watch('payment', (next, prev) => seen.push([next.timeoutMs, prev.timeoutMs]))
    const onProvider: unknown[] = []
    config.watch('payment.provider', (next) => onProvider.push(next))

    const change = nextChange(config)
    const put = await bed.client.put(`${prefix}payment/timeoutMs`).value('1500').exec()
    const event = await change
    expect(event.changes).toEqual([
      { path: 'payment.timeoutMs', kind: 'update', prev: 5000, next: 1500, secret: false },
    ])
    expect(event.prev.payment.timeoutMs).toBe(5000)
    expect(event.next.payment.timeoutMs).toBe(1500)
    expect(event.source).toBe(`etcd:${prefix}`)
    expect(event.keys).toEqual([`${prefix}payment/timeoutMs`])
    expect(event.revision).toBe(Number(put.header.revision))
    expect(config.get('payment.timeoutMs')).toBe(1500)
    expect(config.revision).toBe(Number(put.header.revision))
    expect(seen).toEqual([[1500, 5000]])
    expect(onProvider).toEqual([]) // not its subtree

    // Deleting the key falls back to the schema default.
    const removed = nextChange(config)
    await bed.client.delete().key(`${prefix}payment/timeoutMs`).exec()
    expect((await removed).changes).toEqual([
      { path: 'payment.timeoutMs', kind: 'update', prev: 1500, next: 5000, secret: false },
    ])
    expect(seen).toEqual([
      [1500, 5000],
      [5000, 1500],
    ])
  })

  it('an invalid put is rejected: `invalid` with zod issues, source and key; old config served; snapshot untouched', async () => {
    const prefix = uniquePrefix('invalid')
    const snapshot = join(bed.dir, 'invalid.json')
    await bed.client.put(`${prefix}payment/timeoutMs`).value('1200')
    const config = await start(prefix, { snapshot })
    await waitFor(() => statSync(snapshot, { throwIfNoEntry: false }), 'the first snapshot')
    const before = readFileSync(snapshot, 'utf8')
    const mtime = statSync(snapshot).mtimeMs
    const changes: unknown[] = []
    config.on('change', (e) => changes.push(e))

    const invalid = new Promise<ConfigError>((resolve) => config.once('invalid', resolve))
    await bed.client.put(`${prefix}payment/timeoutMs`).value('-5').exec()
    const error = await invalid
    expect(ConfigError.is(error)).toBe(true)
    expect(error.code).toBe('CONFIG_INVALID')
    expect(error.source).toBe(`etcd:${prefix}`)
    expect(error.keys).toEqual([`${prefix}payment/timeoutMs`])
    expect(error.issues).toEqual([
      {
        path: 'payment.timeoutMs',
        code: 'too_small',
        message: 'Too small: expected number to be >0',
        source: `etcd:${prefix}`,
        key: `${prefix}payment/timeoutMs`,
      },
    ])
    expect(config.get('payment.timeoutMs')).toBe(1200)

    // A text where a number belongs, through another key: rejected the same way.
    const invalid2 = new Promise<ConfigError>((resolve) => config.once('invalid', resolve))
    await bed.client.put(`${prefix}payment/provider`).value('paypal').exec()
    const error2 = await invalid2
    expect(error2.issues.map((i) => i.path).sort()).toEqual(['payment.provider', 'payment.timeoutMs'])
    expect(config.get('payment')).toEqual({ timeoutMs: 1200, provider: 'stripe', retries: 3 })
    expect(changes).toEqual([])
    expect(readFileSync(snapshot, 'utf8')).toBe(before)
    expect(statSync(snapshot).mtimeMs).toBe(mtime)
    expect(JSON.parse(before).sources[`etcd:${prefix}`]).toEqual({ payment: { timeoutMs: 1200 } })

    // Fixing both makes the next update valid again.
    const fixed = nextChange(config)
    await bed.client.put(`${prefix}payment/timeoutMs`).value('900').exec()
    await bed.client.put(`${prefix}payment/provider`).value('adyen').exec()
    await fixed
    await waitFor(() => config.get('payment.provider') === 'adyen', 'the fix')
    expect(config.get('payment')).toEqual({ timeoutMs: 900, provider: 'adyen', retries: 3 })
    await waitFor(
      () => JSON.parse(readFileSync(snapshot, 'utf8')).sources[`etcd:${prefix}`].payment.provider === 'adyen',
      'the snapshot of the fixed config',
    )
  })

  it('a burst of 1,000 puts is applied in few batches and the final state equals etcd', async () => {
    const prefix = uniquePrefix('burst')
    const config = await start(prefix, { debounce: 400, maxDebounce: 10_000 })
    let applied = 0
    config.on('change', () => applied++)
    const puts: Promise<unknown>[] = []
    for (let i = 0; i < 1000; i++) {
      puts.push(
        bed.client
          .put(`${prefix}features/f${i % 100}`)
          .value(String(i))
          .exec(),
      )
      if (i % 100 === 99) await Promise.all(puts.splice(0)) // pipelined, 100 in flight
    }
    await bed.client.put(`${prefix}payment/retries`).value('7')
    const expected = await expectedFromEtcd(bed.client, prefix)
    await waitFor(() => config.get('payment.retries') === 7, 'the last put to be applied')
    expect({ ...config.get(), service: 'orders' }).toEqual(expected)
    expect(Object.keys(config.get('features'))).toHaveLength(100)
    expect(config.get('features').f99).toBe(999)
    expect(applied).toBeLessThanOrEqual(3)
  })

  it('a throwing listener is reported as `error`; other listeners and the watch go on', async () => {
    const prefix = uniquePrefix('throw')
    const config = await start(prefix)
    const errors: ConfigError[] = []
    const values: number[] = []
    config.on('error', (e) => errors.push(e))
    config.on('change', () => {
      throw new Error('listener bug')
    })
    config.watch('payment.retries', () => {
      throw new Error('watch bug')
    })
    config.on('change', (e) => values.push(e.next.payment.retries))
    for (const n of [1, 2, 3]) {
      await bed.client.put(`${prefix}payment/retries`).value(String(n))
      await waitFor(() => config.get('payment.retries') === n, `retries = ${n}`)
    }
    await waitFor(() => values.length === 3, 'three change events')
    expect(values).toEqual([1, 2, 3])
    expect(errors.map((e) => e.code)).toEqual(Array(6).fill('CONFIG_LISTENER_FAILED'))
    expect(errors[0]?.message).toContain('listener bug')
    expect(errors[1]?.message).toContain('watch bug')
  })

  it('secrets from etcd are served by get() but redacted in events, toJSON and JSON.stringify', async () => {
    const prefix = uniquePrefix('secret')
    const config = await start(prefix)
    const change = nextChange(config)
    await bed.client.put(`${prefix}payment/apiKey`).value('sk_live_123456')
    const event = await change
    expect(config.get('payment.apiKey')).toBe('sk_live_123456')
    expect(event.changes).toEqual([
      { path: 'payment.apiKey', kind: 'add', prev: undefined, next: '[redacted]', secret: true },
    ])
    expect(JSON.stringify(event)).not.toContain('sk_live')
    expect(JSON.stringify(config)).not.toContain('sk_live')
    expect(JSON.stringify(config.get('payment'))).toContain('"apiKey":"[redacted]"')
  })

  it('a cut watch connection resumes from the last revision: every change made meanwhile is applied', async () => {
    const prefix = uniquePrefix('cut')
    const proxy = await TcpProxy.start(endpoints)
    bed.open.push(proxy)
    const config = await start(prefix, {}, proxy.endpoint)
    const staleEvents: boolean[] = []
    config.on('stale', (e) => staleEvents.push(e.stale))
    await bed.client.put(`${prefix}features/a`).value('1')
    await waitFor(() => config.get('features').a === 1, 'the first change')

    proxy.cut({ block: true })
    await waitFor(() => config.stale, 'the config to notice the cut')
    for (let i = 0; i < 50; i++) await bed.client.put(`${prefix}features/k${i % 10}`).value(String(i))
    await bed.client.delete().key(`${prefix}features/a`)
    await bed.client.put(`${prefix}payment/provider`).value('adyen')
    expect(config.get('features')).toEqual({ a: 1 }) // nothing can arrive while cut
    proxy.unblock()

    const expected = await expectedFromEtcd(bed.client, prefix)
    await waitFor(() => config.get('payment.provider') === 'adyen' && !config.stale, 'the catch-up after reconnect')
    expect({ ...config.get(), service: 'orders' }).toEqual(expected)
    expect(config.get('features')).toEqual({
      k0: 40,
      k1: 41,
      k2: 42,
      k3: 43,
      k4: 44,
      k5: 45,
      k6: 46,
      k7: 47,
      k8: 48,
      k9: 49,
    })
    expect(staleEvents).toEqual([true, false])
  })

  it('createConfig fails with CONFIG_UNAVAILABLE when etcd does not answer and there is no snapshot', async () => {
    const proxy = await TcpProxy.start(endpoints)
    bed.open.push(proxy)
    proxy.cut({ block: true })
    const started = Date.now()
    const error = await start(uniquePrefix('down'), { startTimeout: 500 }, proxy.endpoint).catch((e: unknown) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_UNAVAILABLE')
    expect((error as Error).message).toMatch(
      /^cannot start: etcd:\/test\/.*: (14 UNAVAILABLE|.*did not answer within 500 ms).*; and no snapshot option is set/,
    )
    expect(Date.now() - started).toBeLessThan(3_000)
  })
})
