/** The file source: JSON and YAML, reload on change (also by rename), broken reloads kept out. */
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ChangeEvent, type Config, ConfigError, createConfig, file } from '../src/index.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

let dir: string
const open: Config<AppConfig>[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-file-'))
})
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function start(path: string) {
  const config = await createConfig({ schema: AppConfig, sources: [file(path, { settle: 10 })] })
  open.push(config)
  const changes: ChangeEvent<AppConfig>[] = []
  const errors: ConfigError[] = []
  const invalid: ConfigError[] = []
  config.on('change', (e) => changes.push(e))
  config.on('error', (e) => errors.push(e))
  config.on('invalid', (e) => invalid.push(e))
  return { config, changes, errors, invalid }
}

describe('file source', () => {
  it('a YAML file is reloaded when it changes, in place or replaced by rename', async () => {
    const path = join(dir, 'config.yaml')
    writeFileSync(path, 'service: orders\npayment:\n  timeoutMs: 1000 # ms\n')
    const { config, changes } = await start(path)
    expect(config.get('payment.timeoutMs')).toBe(1000)

    writeFileSync(path, 'service: orders\npayment:\n  timeoutMs: 2000\n  provider: adyen\n')
    await waitFor(() => config.get('payment.timeoutMs') === 2000, 'the in-place edit')
    expect(config.get('payment.provider')).toBe('adyen')
    expect(changes[0]?.source).toBe(`file:${path}`)
    expect(changes[0]?.keys).toEqual([path])

    // How editors and config management save: write a temp file, rename it over the old one.
    const tmp = join(dir, '.config.yaml.swp')
    writeFileSync(tmp, 'service: orders-v3\npayment:\n  timeoutMs: 3000\n')
    renameSync(tmp, path)
    await waitFor(() => config.get('payment.timeoutMs') === 3000, 'the rename')
    expect(config.get()).toEqual({
      service: 'orders-v3',
      payment: { timeoutMs: 3000, provider: 'stripe', retries: 3 },
      features: {},
    })
    expect(changes.map((c) => c.changes.map((x) => x.path))).toEqual([
      ['payment.timeoutMs', 'payment.provider'],
      ['service', 'payment.timeoutMs', 'payment.provider'],
    ])
  })

  it('a reload that does not parse is an `error`, a reload against the schema is `invalid`; the last good values stay', async () => {
    const path = join(dir, 'broken.yaml')
    writeFileSync(path, 'payment:\n  retries: 1\n')
    const { config, errors, invalid } = await start(path)
    writeFileSync(path, 'payment:\n  retries: [1\n')
    await waitFor(() => errors.length === 1, 'the parse error')
    expect(errors[0]?.code).toBe('CONFIG_SOURCE_FAILED')
    expect(errors[0]?.message).toMatch(/broken\.yaml is not valid YAML/)
    writeFileSync(path, 'payment:\n  retries: 99\n')
    await waitFor(() => invalid.length === 1, 'the schema rejection')
    expect(invalid[0]?.issues[0]).toMatchObject({ path: 'payment.retries', key: path })
    expect(config.get('payment.retries')).toBe(1)
    writeFileSync(path, 'payment:\n  retries: 2\n')
    await waitFor(() => config.get('payment.retries') === 2, 'the fix')

    unlinkSync(path)
    await waitFor(() => errors.length === 2, 'the removal')
    expect(errors[1]?.message).toMatch(/was removed; its last values stay in force/)
    expect(config.get('payment.retries')).toBe(2)
  })

  it('JSON files are read as JSON; a file that is not an object at the top fails the start', async () => {
    const path = join(dir, 'config.json')
    writeFileSync(path, JSON.stringify({ features: { beta: true } }))
    const { config } = await start(path)
    expect(config.get('features')).toEqual({ beta: true })

    const list = join(dir, 'list.yaml')
    writeFileSync(list, '- a\n- b\n')
    const error = await createConfig({ schema: AppConfig, sources: [file(list)] }).catch((e: unknown) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_SOURCE_FAILED')
    expect((error as Error).message).toMatch(/must hold an object \(a mapping\) at the top level, not a list/)
  })
})
