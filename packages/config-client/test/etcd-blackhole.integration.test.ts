/**
 * Connections that stop forwarding without closing (a dead NAT entry, a firewall dropping the flow,
 * a hung peer), through a TCP proxy in front of the shared etcd: the proxy black-holes the open
 * connections while new ones still get through, and the test writes to etcd directly. Also a watch
 * stream that goes silent on a live connection. Short check intervals keep the file fast.
 */
import { Etcd3, type Watcher } from 'etcd3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { discover, etcd, register } from '../src/etcd/index.js'
import { createConfig } from '../src/index.js'
import { cleanUp, requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'
import { TcpProxy } from './helpers/proxy.js'
import { AppConfig } from './helpers/schema.js'

const endpoints = requireEtcd()
const CHECK_MS = 500
// A few check intervals: a check starts within one, and gives up on a dead connection after `timeout`.
const BOUND_MS = 8 * CHECK_MS
let client: Etcd3
const open: { close(): Promise<void> | void }[] = []

beforeAll(() => {
  client = new Etcd3({ hosts: endpoints })
})
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
})
afterAll(async () => {
  await cleanUp(client)
  client.close()
})

async function proxy(): Promise<TcpProxy> {
  const started = await TcpProxy.start(endpoints.split(',')[0] as string)
  open.push(started)
  return started
}

describe('black-holed connections', () => {
  it('the etcd source notices a black-holed watch, reconnects and applies a write made meanwhile', async () => {
    const prefix = uniquePrefix('blackhole-config')
    const via = await proxy()
    await client.put(`${prefix}payment/retries`).value('4')
    const config = await createConfig({
      schema: AppConfig,
      sources: [etcd({ endpoints: via.endpoint, prefix, timeout: CHECK_MS, watchCheck: CHECK_MS })],
    })
    open.push(config)
    const stale: boolean[] = []
    config.on('stale', (e) => stale.push(e.stale))
    await client.put(`${prefix}payment/retries`).value('5')
    await waitFor(() => config.get('payment.retries') === 5, 'the watch to deliver before the black hole')

    expect(via.blackhole()).toBeGreaterThan(0)
    const written = await client.put(`${prefix}payment/retries`).value('6').exec()
    await waitFor(() => config.get('payment.retries') === 6, 'the write made during the black hole', BOUND_MS)
    await waitFor(() => !config.stale, 'the config to be current again', BOUND_MS)
    expect(stale).toEqual([true, false])
    expect(config.unavailable).toEqual([])
    expect(config.revision).toBe(Number(written.header.revision))

    // It watches on, over the new connection.
    await client.put(`${prefix}payment/retries`).value('7')
    await waitFor(() => config.get('payment.retries') === 7, 'a write after the recovery')
  })

  it('discover() notices a black-holed watch and sees an instance that appeared meanwhile', async () => {
    const prefix = uniquePrefix('blackhole-discover')
    const via = await proxy()
    const discovery = await discover('orders', {
      endpoints: via.endpoint,
      prefix,
      timeout: CHECK_MS,
      watchCheck: CHECK_MS,
    })
    open.push(discovery)
    const first = await register({ endpoints, prefix, service: 'orders', instance: 'a', address: 'http://a', ttl: 5 })
    open.push(first)
    await waitFor(() => discovery.instances().length === 1, 'the first instance before the black hole')

    expect(via.blackhole()).toBeGreaterThan(0)
    const second = await register({ endpoints, prefix, service: 'orders', instance: 'b', address: 'http://b', ttl: 5 })
    open.push(second)
    await waitFor(() => discovery.instances().length === 2, 'the instance registered during the black hole', BOUND_MS)
    expect(discovery.instances().map((i) => i.address)).toEqual(['http://a', 'http://b'])
  })

  it('register() notices that its renewals no longer reach etcd and registers again on a new connection', async () => {
    const prefix = uniquePrefix('blackhole-lease')
    const via = await proxy()
    const registration = await register({
      endpoints: via.endpoint,
      prefix,
      service: 'orders',
      instance: 'a',
      address: 'http://a',
      ttl: 1,
      timeout: '2s',
    })
    open.push(registration)
    const key = registration.key
    const leaseOf = async () => (await client.get(key).exec()).kvs[0]?.lease
    const firstLease = await leaseOf()
    expect(firstLease).toBeDefined()
    const events: string[] = []
    registration.on('lost', () => events.push(`lost registered=${registration.registered}`))
    registration.on('registered', () => events.push(`registered registered=${registration.registered}`))

    expect(via.blackhole()).toBeGreaterThan(0)
    await waitFor(() => events.length === 2, 'the loss and the re-registration', BOUND_MS)
    expect(events).toEqual(['lost registered=false', 'registered registered=true'])
    expect(registration.registered).toBe(true)
    // In etcd (read directly), under a new lease that is renewed: still there after 2 × ttl.
    const secondLease = await leaseOf()
    expect(secondLease).toBeDefined()
    expect(secondLease).not.toBe(firstLease)
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    expect(await leaseOf()).toBe(secondLease)
    expect(events).toHaveLength(2)
  })

  it('a watch stream that goes silent on a live connection is replaced and resumes from the last revision', async () => {
    const prefix = uniquePrefix('silent')
    const own = new Etcd3({ hosts: endpoints })
    open.push(own)
    const mute = muteableWatches(own)
    await client.put(`${prefix}features/a`).value('true')
    const config = await createConfig({
      schema: AppConfig,
      sources: [etcd({ client: own, prefix, timeout: CHECK_MS, watchCheck: CHECK_MS })],
    })
    open.push(config)
    await client.put(`${prefix}features/b`).value('true')
    await waitFor(() => config.get('features').b === true, 'the watch to deliver before it goes silent')

    mute() // the current stream delivers nothing more; the connection itself is fine
    await client.put(`${prefix}features/c`).value('1')
    await client.delete().key(`${prefix}features/a`)
    await waitFor(
      () => config.get('features').c === 1 && !('a' in config.get('features')),
      'the writes missed by the silent watch',
      BOUND_MS,
    )
    expect(config.stale).toBe(false)
    await client.put(`${prefix}features/d`).value('2')
    await waitFor(() => config.get('features').d === 2, 'a write after the new watch')
  })
})

/**
 * Wraps `own.watch()` so that mute() silences every watcher created so far (their `data` is
 * dropped, as from a stream that stopped delivering); watchers created later work normally.
 */
function muteableWatches(own: Etcd3): () => void {
  const created: Watcher[] = []
  const muted = new Set<Watcher>()
  const watch = own.watch.bind(own)
  own.watch = () => {
    const builder = watch()
    const build = builder.watcher.bind(builder)
    builder.watcher = () => {
      const watcher = build()
      const emit = watcher.emit.bind(watcher)
      watcher.emit = (event: string | symbol, ...args: unknown[]) =>
        event === 'data' && muted.has(watcher) ? false : emit(event, ...args)
      created.push(watcher)
      return watcher
    }
    return builder
  }
  return () => {
    for (const watcher of created) muted.add(watcher)
  }
}
