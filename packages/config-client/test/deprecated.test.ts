/**
 * The old option names keep working, each with one DeprecationWarning per process. One test per
 * old name; every other test uses the new names.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { discover, etcd, register } from '../src/etcd/index.js'
import { createConfig, file, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-deprecated-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
closeTrackedAfterEach()
afterEach(() => {
  vi.restoreAllMocks()
  vi.unstubAllEnvs()
})

/** The deprecation warnings emitted while `run` runs, by code. */
async function warningsDuring(run: () => unknown): Promise<string[]> {
  const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
  await run()
  return emit.mock.calls.map((call) => {
    const options = call[1] as { type?: string; code?: string } | undefined
    expect(options?.type).toBe('DeprecationWarning')
    return options?.code ?? ''
  })
}

describe('createConfig', () => {
  it('debounceMs still debounces, and warns once', async () => {
    const codes = await warningsDuring(async () => {
      const source = memory({})
      const config = await track(createConfig({ schema: AppConfig, sources: [source], debounceMs: 60 }))
      await track(createConfig({ schema: AppConfig, sources: [memory({})], debounceMs: 60 }))
      const seen: number[] = []
      config.on('change', (e) => seen.push(e.next.payment.retries))
      source.put('payment.retries', 1)
      await new Promise((resolve) => setTimeout(resolve, 15))
      source.put('payment.retries', 2)
      await waitFor(() => seen.length > 0, 'the debounced change')
      expect(seen).toEqual([2])
    })
    expect(codes).toEqual(['BACKPLANE_DEP_CONFIG:createConfig.debounceMs'])
  })

  it('maxDebounceMs is still accepted, and warns once', async () => {
    const codes = await warningsDuring(async () => {
      await track(createConfig({ schema: AppConfig, debounce: 10, maxDebounceMs: 1_000 }))
      await track(createConfig({ schema: AppConfig, debounce: 10, maxDebounceMs: 1_000 }))
    })
    expect(codes).toEqual(['BACKPLANE_DEP_CONFIG:createConfig.maxDebounceMs'])
  })

  it('retry: { minDelayMs, maxDelayMs } still sets the retry delays, and each warns once', async () => {
    let up = false
    const codes = await warningsDuring(async () => {
      const flaky = { name: 'flaky', load: async () => (up ? { service: 'back' } : Promise.reject(new Error('down'))) }
      const config = await track(
        createConfig({
          schema: AppConfig,
          sources: [flaky],
          allowDefaultsOnly: true,
          retry: { minDelayMs: 5, maxDelayMs: 20 },
        }),
      )
      await track(
        createConfig({ schema: AppConfig, allowDefaultsOnly: true, retry: { minDelayMs: 5, maxDelayMs: 20 } }),
      )
      expect(config.stale).toBe(true)
      up = true
      // With the default delays (500 ms up to 30 s) this would take far longer.
      await waitFor(() => !config.stale, 'the recovery', 1_000)
      expect(config.get('service')).toBe('back')
    })
    expect(codes).toEqual([
      'BACKPLANE_DEP_CONFIG:createConfig.retry.minDelayMs',
      'BACKPLANE_DEP_CONFIG:createConfig.retry.maxDelayMs',
    ])
  })

  it('a new name given with its old one wins', async () => {
    const codes = await warningsDuring(async () => {
      const source = memory({})
      const config = await track(
        createConfig({ schema: AppConfig, sources: [source], debounce: 0, debounceMs: 60_000 }),
      )
      const seen: number[] = []
      config.on('change', (e) => seen.push(e.next.payment.retries))
      source.put('payment.retries', 4)
      await waitFor(() => seen.length === 1, 'the change, without the old 60 s debounce')
    })
    // At most the one warning per process for debounceMs.
    expect(codes.filter((c) => c !== 'BACKPLANE_DEP_CONFIG:createConfig.debounceMs')).toEqual([])
  })
})

describe('file source', () => {
  it('settleMs is still accepted, and warns once', async () => {
    const path = join(dir, 'settle.yaml')
    writeFileSync(path, 'service: settled\n')
    const codes = await warningsDuring(async () => {
      const config = await track(createConfig({ schema: AppConfig, sources: [file(path, { settleMs: 5 })] }))
      file(path, { settleMs: 5 })
      expect(config.get('service')).toBe('settled')
    })
    expect(codes).toEqual(['BACKPLANE_DEP_CONFIG:file source.settleMs'])
  })
})

describe('etcd', () => {
  it('the etcd source: timeoutMs, minRetryMs and maxRetryMs are still accepted, each warns once', async () => {
    const codes = await warningsDuring(() => {
      etcd({ prefix: '/config/x/', timeoutMs: 500, minRetryMs: 10, maxRetryMs: 100 })
      etcd({ prefix: '/config/x/', timeoutMs: 500, minRetryMs: 10, maxRetryMs: 100 })
      // Mixed with the new shape, the retry field given there wins over the old flat one.
      etcd({ prefix: '/config/x/', minRetryMs: 10, retry: { initialDelay: '50ms' } })
    })
    expect(codes).toEqual([
      'BACKPLANE_DEP_CONFIG:etcd source.timeoutMs',
      'BACKPLANE_DEP_CONFIG:etcd source.minRetryMs',
      'BACKPLANE_DEP_CONFIG:etcd source.maxRetryMs',
    ])
  })

  it('register and discover: timeoutMs is still accepted, and warns once each', async () => {
    vi.stubEnv('ETCD_ENDPOINTS', '')
    const codes = await warningsDuring(async () => {
      // Parsed, then refused for want of endpoints: the old option itself was accepted.
      const options = { service: 's', instance: 'i', address: 'http://x', timeoutMs: 500 }
      await expect(register(options)).rejects.toThrow(/no etcd endpoints/)
      await expect(register(options)).rejects.toThrow(/no etcd endpoints/)
      await expect(discover('s', { timeoutMs: 500 })).rejects.toThrow(/no etcd endpoints/)
    })
    expect(codes).toEqual(['BACKPLANE_DEP_CONFIG:register.timeoutMs', 'BACKPLANE_DEP_CONFIG:discover.timeoutMs'])
  })
})
