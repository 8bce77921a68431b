/** The snapshot of the last good configuration: written atomically, served when a source is down. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ConfigSource, createConfig, env, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-snapshot-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
closeTrackedAfterEach()

describe('snapshot', () => {
  it('is written atomically after every applied change, with each source tree, mode 0600', async () => {
    const path = join(dir, 'snap', 'cfg.json')
    const source = memory({ payment: { retries: 1 } })
    const config = await track(
      createConfig({
        schema: AppConfig,
        sources: [env({ prefix: 'X_', env: { X_SERVICE: 'svc' } }), source],
        snapshot: path,
      }),
    )
    await waitFor(() => statSync(path, { throwIfNoEntry: false }), 'the snapshot')
    source.put('payment.retries', 2)
    await waitFor(() => JSON.parse(readFileSync(path, 'utf8')).sources.memory.payment.retries === 2, 'the rewrite')
    await config.close()
    const data = JSON.parse(readFileSync(path, 'utf8'))
    expect(data).toMatchObject({
      format: 'backplane-config-snapshot',
      version: 1,
      sources: { 'env:X_': { service: 'svc' }, memory: { payment: { retries: 2 } } },
    })
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(dir, 'snap'))).toEqual(['cfg.json']) // no temp files left
  })

  it('serves a source that is down from the snapshot; a custom source that rejects counts as down', async () => {
    const path = join(dir, 'custom-snap.json')
    let up = true
    let loads = 0
    const flaky: ConfigSource = {
      name: 'flaky',
      load: async () => {
        loads++
        if (!up) throw new Error('backend down')
        return { payment: { timeoutMs: 42 } }
      },
    }
    const first = await createConfig({ schema: AppConfig, sources: [flaky], snapshot: path })
    await first.close()
    up = false
    const config = await track(
      createConfig({ schema: AppConfig, sources: [flaky], snapshot: path, retry: { initialDelay: 20, maxDelay: 40 } }),
    )
    expect(config.stale).toBe(true)
    expect(config.get('payment.timeoutMs')).toBe(42)
    await waitFor(() => loads >= 4, 'retries')
    up = true
    await waitFor(() => !config.stale, 'the recovery')
  })
})
