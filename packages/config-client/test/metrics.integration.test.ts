/**
 * The etcd source's metrics against a real etcd, through a TCP proxy that cuts or black-holes the
 * client's connections: staleness grows while etcd is out of reach and falls back once the watch is
 * back; replaced watches are counted by reason. Short check intervals keep the file fast.
 */
import { Etcd3 } from 'etcd3'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  expectInCatalogue,
  type MetricRecording,
  readCatalogue,
  recordMetrics,
  total,
} from '../../../test/helpers/metric-catalogue.js'
import { etcd } from '../src/etcd/index.js'
import { createConfig } from '../src/index.js'
import { cleanUp, requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { TcpProxy } from './helpers/proxy.js'
import { AppConfig } from './helpers/schema.js'

const endpoints = requireEtcd()
const CHECK_MS = 500
const RESTARTS = 'backplane.config.watch.restarts'
let client: Etcd3
let recording: MetricRecording
const open: { close(): Promise<void> | void }[] = []

beforeAll(() => {
  client = new Etcd3({ hosts: endpoints })
})
beforeEach(() => {
  recording = recordMetrics()
})
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
  await recording.stop()
})
afterAll(async () => {
  await cleanUp(client)
  client.close()
})

async function start(prefix: string) {
  const via = await TcpProxy.start(endpoints.split(',')[0] as string)
  open.push(via)
  const config = await createConfig({
    schema: AppConfig,
    sources: [etcd({ endpoints: via.endpoint, prefix, timeout: CHECK_MS, watchCheck: CHECK_MS })],
  })
  open.push(config)
  return { via, config }
}

/** The etcd source's staleness in seconds, as collected now. */
async function etcdStaleness(): Promise<number> {
  const metric = (await recording.collect()).find((m) => m.name === 'backplane.config.staleness')
  const point = metric?.points.find((p) => p.attributes['config.source'] === 'etcd')
  if (point === undefined) throw new Error('no staleness reported for etcd')
  return point.value
}

describe('etcd source metrics', () => {
  it('staleness grows while etcd is out of reach, and falls back once the watch is back', async () => {
    const prefix = uniquePrefix('metrics-stale')
    const { via, config } = await start(prefix)
    // In touch: each check (every CHECK_MS) confirms the copy, so staleness stays near one interval.
    await waitFor(async () => (await etcdStaleness()) < CHECK_MS / 1000, 'a fresh etcd source')

    via.cut({ block: true })
    await waitFor(async () => (await etcdStaleness()) > (4 * CHECK_MS) / 1000, 'staleness to grow past 4 checks')
    await client.put(`${prefix}payment/retries`).value('8')
    const before = await etcdStaleness()
    await waitFor(async () => (await etcdStaleness()) > before, 'staleness to keep growing')
    expect(config.stale).toBe(true)

    via.unblock()
    await waitFor(() => config.get('payment.retries') === 8, 'the write made while cut off', 20_000)
    await waitFor(async () => (await etcdStaleness()) < CHECK_MS / 1000, 'staleness to fall back', 20_000)

    const recorded = await recording.collect()
    // Cut, then refused while blocked: each attempt's stream breaks at once.
    expect(total(recorded, RESTARTS, { reason: 'disconnected' })).toBeGreaterThanOrEqual(1)
    expect(total(recorded, RESTARTS, { reason: 'silent' })).toBe(0)
    expect(total(recorded, 'backplane.config.updates', { outcome: 'applied', 'config.source': 'etcd' })).toBe(1)
    expectInCatalogue(recorded, readCatalogue('packages/config-client'))
  })

  it('a black-holed watch is replaced, and counted as an unreachable restart', async () => {
    const prefix = uniquePrefix('metrics-blackhole')
    const { via, config } = await start(prefix)
    await client.put(`${prefix}payment/retries`).value('5')
    await waitFor(() => config.get('payment.retries') === 5, 'the watch to deliver before the black hole')
    expect(total(await recording.collect(), RESTARTS)).toBe(0)

    expect(via.blackhole()).toBeGreaterThan(0)
    await client.put(`${prefix}payment/retries`).value('6')
    await waitFor(() => config.get('payment.retries') === 6, 'the write made during the black hole', 20_000)
    const recorded = await recording.collect()
    expect(total(recorded, RESTARTS, { reason: 'unreachable' })).toBeGreaterThanOrEqual(1)
    expect(total(recorded, RESTARTS, { reason: 'silent' })).toBe(0)
    expectInCatalogue(recorded, readCatalogue('packages/config-client'))
  })
})
