/**
 * Sealed secrets against the shared etcd of scripts/services.sh (each test under its own prefix):
 * opened by the etcd source, never in clear in etcd, the snapshot, events or logs; rotation with a
 * live config.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { etcd, resealPrefix } from '../src/etcd/index.js'
import {
  type ChangeEvent,
  type Config,
  ConfigError,
  type CreateConfigOptions,
  createConfig,
  generateKey,
  isSealed,
  type KeyRing,
  openValue,
  parseKeyRing,
  sealValue,
} from '../src/index.js'
import { etcdTestBed } from './helpers/bed.js'
import { recordingLogger } from './helpers/config.js'
import { requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { TcpProxy } from './helpers/proxy.js'
import { AppConfig } from './helpers/schema.js'

const endpoints = requireEtcd()
const k1 = generateKey()
const k2 = generateKey()
const ringK1 = parseKeyRing({ current: 'k1', keys: { k1 } })
const ringK1K2 = parseKeyRing({ current: 'k2', keys: { k1, k2 } })
const PLAIN = 'sk_live_4f8a2c19d7'
const PLAIN2 = 'sk_live_77c0ffee01'
const bed = etcdTestBed('sealed')

async function start(
  prefix: string,
  keys: KeyRing | undefined,
  extra: Omit<CreateConfigOptions<typeof AppConfig>, 'schema' | 'sources'> = {},
  hosts = endpoints,
) {
  const config = await createConfig({
    schema: AppConfig,
    sources: [etcd({ endpoints: hosts, prefix, timeout: '2s', ...(keys ? { keys } : {}) })],
    ...extra,
  })
  bed.open.push(config)
  return config
}

async function putSealed(prefix: string, path: string, plaintext: string, ring: KeyRing = ringK1) {
  const key = `${prefix}${path}`
  await bed.client.put(key).value(sealValue(ring, key, plaintext))
}

/** Every event of the kinds given, as they arrive. */
function record<T>(config: Config<T>) {
  const seen = { change: [] as ChangeEvent<T>[], invalid: [] as ConfigError[], error: [] as ConfigError[] }
  config.on('change', (e) => seen.change.push(e))
  config.on('invalid', (e) => seen.invalid.push(e))
  config.on('error', (e) => seen.error.push(e))
  return seen
}

describe('sealed secrets through the etcd source', () => {
  it('serves the clear value, which appears in none of: etcd, the snapshot file, change events, the logs', async () => {
    const prefix = uniquePrefix('sealed')
    const snapshot = join(bed.dir, 'sealed.json')
    await bed.client.put(`${prefix}payment/timeoutMs`).value('2500')
    await putSealed(prefix, 'payment/apiKey', PLAIN)
    const { logger, lines } = recordingLogger()
    const config = await start(prefix, ringK1, { snapshot, logger })
    const seen = record(config)
    expect(config.get('payment.apiKey')).toBe(PLAIN)
    expect(config.get('payment.timeoutMs')).toBe(2500)

    await putSealed(prefix, 'payment/apiKey', PLAIN2)
    await waitFor(() => config.get('payment.apiKey') === PLAIN2, 'the new sealed value')
    expect(seen.change).toHaveLength(1)
    expect(seen.change[0]?.changes).toEqual([
      { path: 'payment.apiKey', kind: 'update', prev: '[redacted]', next: '[redacted]', secret: true },
    ])
    await config.close()

    const raw = Object.values(await bed.client.getAll().prefix(prefix).strings()).join('\n')
    const file = readFileSync(snapshot, 'utf8')
    const events = JSON.stringify(seen.change) + JSON.stringify(config) + JSON.stringify(config.get())
    for (const plaintext of [PLAIN, PLAIN2]) {
      expect(raw).not.toContain(plaintext)
      expect(file).not.toContain(plaintext)
      expect(events).not.toContain(plaintext)
      for (const line of lines) expect(line).not.toContain(plaintext)
    }
    expect(lines.some((l) => l.includes('config updated'))).toBe(true) // the logs were written
    const stored = JSON.parse(file).sources[`etcd:${prefix}`].payment
    expect(stored.timeoutMs).toBe(2500)
    expect(isSealed(stored.apiKey)).toBe(true)
    expect(openValue(ringK1, `${prefix}payment/apiKey`, stored.apiKey.$sealed)).toBe(PLAIN2)
  })

  it('starts from the snapshot while etcd is down, opening the sealed values with the ring; without the ring the snapshot cannot help', async () => {
    const prefix = uniquePrefix('sealed-down')
    const snapshot = join(bed.dir, 'sealed-down.json')
    await putSealed(prefix, 'payment/apiKey', PLAIN)
    await bed.client.put(`${prefix}payment/provider`).value('adyen')
    const first = await start(prefix, ringK1, { snapshot })
    await first.close()

    const proxy = await TcpProxy.start(endpoints)
    bed.open.push(proxy)
    proxy.cut({ block: true })
    const config = await start(prefix, ringK1K2, { snapshot, startTimeout: 500 }, proxy.endpoint)
    expect(config.stale).toBe(true)
    expect(config.get('payment')).toEqual({ timeoutMs: 5000, provider: 'adyen', retries: 3, apiKey: PLAIN })
    await config.close()
    expect(readFileSync(snapshot, 'utf8')).not.toContain(PLAIN)

    const noRing = await start(prefix, undefined, { snapshot, startTimeout: 500 }, proxy.endpoint).catch((e) => e)
    expect(ConfigError.is(noRing) && noRing.code).toBe('CONFIG_UNAVAILABLE')
    expect((noRing as Error).message).toContain('has no usable values of')
  })

  it('an envelope that does not open is an error of that update: reported, not applied, the last good values stay', async () => {
    const prefix = uniquePrefix('sealed-bad')
    await putSealed(prefix, 'payment/apiKey', PLAIN)
    const config = await start(prefix, ringK1)
    const seen = record(config)
    const before = config.get()
    const revisionBefore = config.revision

    // Sealed with a key the bed.client's ring does not hold, together with a plain change.
    const stranger = parseKeyRing({ current: 'k9', keys: { k9: generateKey() } })
    const res = await bed.client
      .if(`${prefix}payment/apiKey`, 'Mod', '>', 0)
      .then(
        bed.client.put(`${prefix}payment/apiKey`).value(sealValue(stranger, `${prefix}payment/apiKey`, PLAIN2)),
        bed.client.put(`${prefix}payment/retries`).value('7'),
      )
      .commit()
    await waitFor(() => seen.error.length > 0, 'the error event')
    const error = seen.error[0] as ConfigError
    expect(error.code).toBe('CONFIG_SEALED')
    expect(error.source).toBe(`etcd:${prefix}`)
    expect(error.revision).toBe(Number(res.header.revision))
    expect([...error.keys].sort()).toEqual([`${prefix}payment/apiKey`, `${prefix}payment/retries`])
    expect(error.message).toContain('sealed with key "k9", which the key ring does not hold (it has k1)')
    expect(error.message).not.toContain(PLAIN2)
    expect(config.get()).toBe(before)
    expect(config.get('payment.apiKey')).toBe(PLAIN)
    expect(config.revision).toBe(revisionBefore)
    expect(seen.change).toEqual([])
    expect(seen.invalid).toEqual([])

    // Fixed: the next update applies everything, the plain change included.
    await putSealed(prefix, 'payment/apiKey', PLAIN2)
    await waitFor(() => config.get('payment.apiKey') === PLAIN2, 'the fixed value')
    expect(config.get('payment.retries')).toBe(7)
  })

  it('createConfig fails with CONFIG_SEALED when a value does not open at start (a mistake, not an outage)', async () => {
    const prefix = uniquePrefix('sealed-start')
    await putSealed(prefix, 'payment/apiKey', PLAIN, ringK1K2) // sealed with k2
    const error = await start(prefix, ringK1).catch((e) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_SEALED')
    expect((error as Error).message).toContain('sealed with key "k2"')
    const noRing = await start(prefix, undefined).catch((e) => e)
    expect(ConfigError.is(noRing) && noRing.code).toBe('CONFIG_SEALED')
    expect((noRing as Error).message).toContain('no key ring is configured')
  })
})

describe('resealPrefix (key rotation)', () => {
  it('k1 -> k2 under a live config: no invalid or error event, values unchanged, every envelope now k2', async () => {
    const prefix = uniquePrefix('reseal')
    await putSealed(prefix, 'payment/apiKey', PLAIN)
    await bed.client.put(`${prefix}features`).value(sealValue(ringK1, `${prefix}features`, '{"beta":true,"limit":5}'))
    await bed.client.put(`${prefix}payment/timeoutMs`).value('1500')
    // The clients get the new ring (k1 and k2, current k2) before the reseal.
    const config = await start(prefix, ringK1K2)
    const seen = record(config)
    const before = config.get()

    const result = await resealPrefix(bed.client, prefix, ringK1K2)
    expect(result.resealed).toEqual([`${prefix}features`, `${prefix}payment/apiKey`])
    expect(result.sealed).toEqual([])
    await waitFor(() => config.revision === Number(result.revision), 'the reseal to reach the config')
    expect(config.get()).toEqual(before)
    expect(seen).toEqual({ change: [], invalid: [], error: [] })

    const stored = await bed.client.getAll().prefix(prefix).strings()
    expect(JSON.parse(stored[`${prefix}payment/apiKey`] as string).kid).toBe('k2')
    expect(JSON.parse(stored[`${prefix}features`] as string).kid).toBe('k2')
    expect(stored[`${prefix}payment/timeoutMs`]).toBe('1500')
    // Done: a ring with k2 only reads everything.
    const k2Only = parseKeyRing({ current: 'k2', keys: { k2 } })
    expect(openValue(k2Only, `${prefix}payment/apiKey`, stored[`${prefix}payment/apiKey`])).toBe(PLAIN)
    // Nothing left to do.
    expect(await resealPrefix(bed.client, prefix, ringK1K2)).toMatchObject({ resealed: [], sealed: [] })
  })

  it('with the schema, seals secret fields still in clear; a value that does not open stops it before any write', async () => {
    const prefix = uniquePrefix('reseal-schema')
    await bed.client.put(`${prefix}payment/apiKey`).value(PLAIN)
    await bed.client.put(`${prefix}payment/timeoutMs`).value('1500')
    const result = await resealPrefix(bed.client, prefix, ringK1, { schema: AppConfig })
    expect(result).toMatchObject({ resealed: [], sealed: [`${prefix}payment/apiKey`] })
    const stored = await bed.client.getAll().prefix(prefix).strings()
    expect(stored[`${prefix}payment/apiKey`]).not.toContain(PLAIN)
    expect(openValue(ringK1, `${prefix}payment/apiKey`, stored[`${prefix}payment/apiKey`])).toBe(PLAIN)
    expect(stored[`${prefix}payment/timeoutMs`]).toBe('1500')

    await putSealed(prefix, 'features', '{"beta":true}', parseKeyRing({ current: 'k9', keys: { k9: generateKey() } }))
    const before = await bed.client.getAll().prefix(prefix).strings()
    const error = await resealPrefix(bed.client, prefix, ringK1K2).catch((e) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_SEALED')
    expect(await bed.client.getAll().prefix(prefix).strings()).toEqual(before)
  })

  it('loses no update: a value sealed by another writer between the read and the write is resealed, not overwritten', async () => {
    const prefix = uniquePrefix('reseal-race')
    await putSealed(prefix, 'payment/apiKey', PLAIN)
    let raced = false
    // The real bed.client, with one concurrent put slipped in before its first transaction.
    const racing = new Proxy(bed.client, {
      get(target, prop) {
        if (prop !== 'kv') return Reflect.get(target, prop)
        return new Proxy(target.kv, {
          get(kv, name) {
            if (name !== 'txn') return Reflect.get(kv, name)
            return async (request: Parameters<typeof kv.txn>[0]) => {
              if (!raced) {
                raced = true
                await putSealed(prefix, 'payment/apiKey', PLAIN2)
              }
              return kv.txn(request)
            }
          },
        })
      },
    })
    const result = await resealPrefix(racing, prefix, ringK1K2)
    expect(raced).toBe(true)
    expect(result.resealed).toEqual([`${prefix}payment/apiKey`])
    const stored = (await bed.client.get(`${prefix}payment/apiKey`).string()) as string
    expect(JSON.parse(stored).kid).toBe('k2')
    expect(openValue(ringK1K2, `${prefix}payment/apiKey`, stored)).toBe(PLAIN2)
  })
})
