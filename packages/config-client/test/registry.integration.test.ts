/**
 * Service registry against the shared etcd: a registered instance is discovered, and disappears
 * when its process dies (its lease is no longer renewed) or when it deregisters.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { Etcd3 } from 'etcd3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Discovery, discover, register, type ServiceInstance } from '../src/etcd/index.js'
import { ConfigError } from '../src/index.js'
import { bundleFixture } from './helpers/bundle.js'
import { cleanUp, requireEtcd, uniquePrefix, waitFor } from './helpers/env.js'

const endpoints = requireEtcd()
let client: Etcd3
let bundleDir: string
let childScript: string

beforeAll(async () => {
  client = new Etcd3({ hosts: endpoints })
  // The child runs plain node: its TypeScript entry is bundled.
  ;({ dir: bundleDir, script: childScript } = await bundleFixture('registered-instance'))
})
afterAll(async () => {
  await cleanUp(client)
  client.close()
  rmSync(bundleDir, { recursive: true, force: true })
})

function startChild(prefix: string, instance: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [childScript, endpoints, prefix, instance], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout?.on('data', (d) => {
      out += d
      if (out.includes('registered ')) resolve(child)
    })
    child.stderr?.on('data', (d) => {
      err += d
    })
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before registering: ${err}`)))
  })
}

describe('service registry', () => {
  it('discover() lists live instances; one disappears when its process dies (lease expiry) or deregisters', async () => {
    const prefix = uniquePrefix('registry')
    const discovery: Discovery = await discover('orders', { endpoints, prefix })
    try {
      expect(discovery.instances()).toEqual([])
      const removed: ServiceInstance[] = []
      const added: ServiceInstance[] = []
      discovery.on('change', (e) => {
        added.push(...e.added)
        removed.push(...e.removed)
      })

      const own = await register({
        endpoints,
        prefix,
        service: 'orders',
        instance: 'a',
        address: 'http://127.0.0.1:9001',
        // 2 s, not 1: other test files run beside this one, and a 1 s lease renewed every 333 ms can
        // lapse on a busy two-core machine. The dead child's lease (1 s) is what is measured.
        ttl: 2,
        metadata: { zone: 'eu-1' },
      })
      expect(own.key).toBe(`${prefix}orders/a`)
      expect(own.registered).toBe(true)

      const child = await startChild(prefix, 'b')
      await waitFor(() => discovery.instances().length === 2, 'both instances')
      expect(discovery.instances().map((i) => [i.instance, i.address])).toEqual([
        ['a', 'http://127.0.0.1:9001'],
        ['b', 'http://127.0.0.1:9002'],
      ])
      expect(discovery.instances()[0]?.metadata).toEqual({ zone: 'eu-1' })
      expect(added.map((i) => i.instance).sort()).toEqual(['a', 'b'])

      // SIGKILL: no goodbye, the lease (ttl 1 s) is just no longer renewed.
      const killedAt = Date.now()
      child.kill('SIGKILL')
      await waitFor(() => discovery.instances().length === 1, 'the dead instance to disappear', 10_000)
      expect(Date.now() - killedAt).toBeLessThan(5_000)
      expect(removed.map((i) => i.instance)).toEqual(['b'])
      expect(await client.getAll().prefix(`${prefix}orders/`).keys()).toEqual([`${prefix}orders/a`])

      // Still alive after more than its ttl: the lease is being renewed.
      await new Promise((resolve) => setTimeout(resolve, 2_500))
      expect(discovery.instances().map((i) => i.instance)).toEqual(['a'])

      await own.close()
      await waitFor(() => discovery.instances().length === 0, 'deregistration')
      expect(removed.map((i) => i.instance)).toEqual(['b', 'a'])
    } finally {
      await discovery.close()
    }
  })

  it('validates its options', async () => {
    const error = await register({ endpoints, service: 'a/b', instance: '', address: '', ttl: 0 } as never).catch(
      (e: unknown) => e,
    )
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_INVALID_OPTIONS')
    expect((error as ConfigError).details).toEqual([
      'service: must not contain "/"',
      'instance: Too small: expected string to have >=1 characters',
      'address: Too small: expected string to have >=1 characters',
      'ttl: Too small: expected number to be >=1',
    ])
  })
})
