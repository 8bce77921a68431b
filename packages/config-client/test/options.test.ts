/** Options of createConfig and the sources: errors listing each problem, durations as strings. */
import { DURATION_EXPECTED } from '@backplane/internal'
import { describe, expect, it, vi } from 'vitest'
import { discover, etcd, register } from '../src/etcd/index.js'
import { ConfigError, type ConfigSource, createConfig, env, file, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

closeTrackedAfterEach()

describe('errors', () => {
  it('invalid options: CONFIG_INVALID_OPTIONS listing each field and what was expected', async () => {
    const error = await createConfig({
      schema: 'not a schema' as never,
      sources: [{ nope: true } as never],
      startTimeout: -1,
      colour: 'blue',
    } as never).catch((e: unknown) => e)
    expect(ConfigError.is(error)).toBe(true)
    expect((error as ConfigError).code).toBe('CONFIG_INVALID_OPTIONS')
    expect((error as ConfigError).details).toEqual([
      'schema: expected a zod 4 schema, e.g. z.object({ ... })',
      'sources.0: expected a source: file(...), env(...), memory(...), etcd(...) or an object with a load() method',
      `startTimeout: expected ${DURATION_EXPECTED}, got -1`,
      '(options): unknown option(s) "colour"',
    ])
    expect(() => env({ prefix: '' })).toThrow(/invalid env source options: prefix: expected a prefix such as "APP_"/)
    expect(() => file('x.yaml', { format: 'toml' as never })).toThrow(ConfigError)
  })
})

describe('durations', () => {
  it('every time option of createConfig accepts a duration string', async () => {
    const source = memory({})
    const config = await track(
      createConfig({
        schema: AppConfig,
        sources: [source],
        startTimeout: '5s',
        debounce: '40ms',
        maxDebounce: '1s',
        retry: { initialDelay: '20ms', maxDelay: '1s', factor: 3, jitter: 'equal', maxAttempts: 5 },
      }),
    )
    const seen: number[] = []
    config.on('change', (e) => seen.push(e.next.payment.retries))
    source.put('payment.retries', 1)
    await new Promise((resolve) => setTimeout(resolve, 10))
    source.put('payment.retries', 2)
    await waitFor(() => seen.length > 0, 'the debounced change')
    expect(seen).toEqual([2])
  })

  it('the file source, the etcd source, register and discover accept duration strings', async () => {
    expect(() => file('x.yaml', { settle: '10ms' })).not.toThrow()
    expect(() =>
      etcd({ prefix: '/config/x/', timeout: '2s', retry: { initialDelay: '100ms', maxDelay: '10s' } }),
    ).not.toThrow()
    vi.stubEnv('ETCD_ENDPOINTS', '')
    try {
      // Parsed, then refused for want of endpoints: the options themselves were accepted.
      const noEndpoints = /no etcd endpoints/
      await expect(
        register({ service: 's', instance: 'i', address: 'http://x', timeout: '1s', ttl: '1500ms' }),
      ).rejects.toThrow(noEndpoints)
      await expect(discover('s', { timeout: '1s' })).rejects.toThrow(noEndpoints)
    } finally {
      vi.unstubAllEnvs()
    }
  })

  it('a malformed duration is CONFIG_INVALID_OPTIONS naming the option and the accepted forms', async () => {
    const error = await createConfig({ schema: AppConfig, debounce: 'soon', retry: { maxDelay: '0s' } }).catch(
      (e: unknown) => e,
    )
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_INVALID_OPTIONS')
    expect((error as ConfigError).details).toEqual([
      `debounce: expected ${DURATION_EXPECTED}, got "soon"`,
      'retry.maxDelay: expected a duration at least 1 ms, got "0s"',
    ])
    expect(() => etcd({ prefix: '/config/x/', timeout: '5 parsecs' })).toThrow(/timeout: expected a duration like/)
    expect(() => file('x.yaml', { settle: -1 })).toThrow(/settle: expected a duration like/)
  })

  it('retry.maxAttempts bounds the retries of a source down at start', async () => {
    let loads = 0
    const down: ConfigSource = {
      name: 'down',
      load: async () => {
        loads++
        throw new Error('backend down')
      },
    }
    const config = await track(
      createConfig({
        schema: AppConfig,
        sources: [down],
        allowDefaultsOnly: true,
        retry: { maxAttempts: 3, initialDelay: '5ms', maxDelay: '10ms' },
      }),
    )
    const errors: ConfigError[] = []
    config.on('error', (e) => errors.push(e))
    await waitFor(() => errors.length === 1, 'giving up')
    expect(loads).toBe(3)
    expect(errors[0]?.code).toBe('CONFIG_UNAVAILABLE')
    expect(errors[0]?.message).toMatch(/still unavailable after 3 attempts/)
    expect(config.stale).toBe(true)
  })
})
