/** The source contract: custom sources, and misconfigured sources failing the start. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ChangeEvent, ConfigError, type ConfigSource, createConfig, file } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { AppConfig } from './helpers/schema.js'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-sources-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
closeTrackedAfterEach()

describe('updates', () => {
  it('a custom source: load() plus watch(onChange), with keys and a revision', async () => {
    let push: ((tree: Record<string, unknown>, info?: { keys?: string[]; revision?: number }) => void) | undefined
    let stopped = false
    const custom: ConfigSource = {
      name: 'vault',
      load: async () => ({ payment: { apiKey: 'k-0001' } }),
      watch(onChange) {
        push = onChange
        return () => {
          stopped = true
        }
      },
    }
    const config = await track(createConfig({ schema: AppConfig, sources: [custom] }))
    expect(config.get('payment.apiKey')).toBe('k-0001')
    const change = new Promise<ChangeEvent<AppConfig>>((resolve) => config.once('change', resolve))
    push?.({ payment: { apiKey: 'k-0002' } }, { keys: ['secret/db'], revision: 7 })
    const event = await change
    expect(event).toMatchObject({ source: 'vault', keys: ['secret/db'], revision: 7 })
    expect(config.get('payment.apiKey')).toBe('k-0002')
    await config.close()
    expect(stopped).toBe(true)
  })
})

describe('errors', () => {
  it('a source that is misconfigured (missing file) fails the start even with a snapshot', async () => {
    const path = join(dir, 'missing-snap.json')
    writeFileSync(path, JSON.stringify({ format: 'backplane-config-snapshot', version: 1, savedAt: '', sources: {} }))
    const error = await createConfig({
      schema: AppConfig,
      sources: [file(join(dir, 'nope.yaml'))],
      snapshot: path,
    }).catch((e: unknown) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_SOURCE_FAILED')
    expect((error as Error).message).toMatch(/nope\.yaml does not exist \(pass \{ optional: true \}/)
    const config = await track(
      createConfig({ schema: AppConfig, sources: [file(join(dir, 'nope.yaml'), { optional: true })] }),
    )
    expect(config.get('service')).toBe('orders')
  })
})
