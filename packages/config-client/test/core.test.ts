/**
 * The core without any server: layering, env coercion, validation and atomic apply, debounce,
 * events and listener isolation, secrets, snapshot, options errors, custom sources.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { loadEtcd3 } from '../src/etcd/index.js'
import {
  type ChangeEvent,
  type Config,
  ConfigError,
  type ConfigSource,
  createConfig,
  env,
  file,
  memory,
  secret,
} from '../src/index.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

let dir: string
const open: Config<unknown>[] = []
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-client-core-'))
})
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function track<T>(promise: Promise<Config<T>>): Promise<Config<T>> {
  const config = await promise
  open.push(config as Config<unknown>)
  return config
}

function recordingLogger() {
  const lines: string[] = []
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`)
  }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

describe('layering', () => {
  it('schema defaults < file < env < later sources; objects merge, arrays replace', async () => {
    const schema = z.object({
      name: z.string().default('default-name'),
      hosts: z.array(z.string()).default(['localhost']),
      payment: z.object({
        timeoutMs: z.number().default(5000),
        retries: z.number().default(3),
        currency: z.string().default('EUR'),
      }),
    })
    const json = join(dir, 'layers.json')
    writeFileSync(
      json,
      JSON.stringify({ name: 'from-file', hosts: ['a', 'b', 'c'], payment: { timeoutMs: 1000, retries: 1 } }),
    )
    const config = await track(
      createConfig({
        schema,
        sources: [
          file(json),
          env({ prefix: 'APP_', env: { APP_PAYMENT__RETRIES: '2', APP_HOSTS: 'x,y' } }),
          memory({ payment: { retries: 9 } }),
        ],
      }),
    )
    expect(config.get()).toEqual({
      name: 'from-file',
      hosts: ['x', 'y'],
      payment: { timeoutMs: 1000, retries: 9, currency: 'EUR' },
    })
    expect(config.sourceNames).toEqual([`file:${json}`, 'env:APP_', 'memory'])
  })

  it('get() is typed by the schema and frozen; get(path) is typed by the path', async () => {
    const config = await track(createConfig({ schema: AppConfig, sources: [memory({ payment: { timeoutMs: 10 } })] }))
    const all = config.get()
    expectTypeOf(all.payment.timeoutMs).toEqualTypeOf<number>()
    expectTypeOf(config.get('payment.provider')).toEqualTypeOf<'stripe' | 'adyen'>()
    expectTypeOf(config.get('payment.apiKey')).toEqualTypeOf<string | undefined>()
    // @ts-expect-error: not a path of the schema
    config.get('payment.nope')
    expect(config.get('payment.timeoutMs')).toBe(10)
    expect(config.get('payment')).toBe(all.payment)
    expect(Object.isFrozen(all) && Object.isFrozen(all.payment) && Object.isFrozen(all.features)).toBe(true)
    expect(() => {
      ;(all.payment as { timeoutMs: number }).timeoutMs = 1
    }).toThrow(TypeError)
  })
})

describe('environment source', () => {
  const schema = z.object({
    payment: z.object({ timeoutMs: z.number().int(), enabled: z.boolean(), mode: z.enum(['live', 'test']) }),
    limits: z.object({ big: z.bigint(), ratio: z.number(), tags: z.array(z.string()), ports: z.array(z.number()) }),
    retry: z.object({ backoff: z.object({ max_delay: z.number() }) }),
    labels: z.record(z.string(), z.string()),
    extra: z.object({ a: z.number(), b: z.string() }).optional(),
    when: z.date().optional(),
    name: z.string(),
  })

  it('maps APP_PAYMENT__TIMEOUT_MS to payment.timeoutMs and coerces each value to the schema type', async () => {
    const config = await track(
      createConfig({
        schema,
        sources: [
          env({
            prefix: 'APP_',
            env: {
              APP_PAYMENT__TIMEOUT_MS: '2500',
              APP_PAYMENT__ENABLED: 'yes',
              APP_PAYMENT__MODE: 'test',
              APP_LIMITS__BIG: '9007199254740993',
              APP_LIMITS__RATIO: ' 0.25 ',
              APP_LIMITS__TAGS: '["a","b"]',
              APP_LIMITS__PORTS: '80, 443',
              APP_RETRY__BACKOFF__MAX_DELAY: '30000',
              APP_LABELS__TEAM_NAME: 'payments',
              APP_EXTRA: '{"a":1,"b":"x"}',
              APP_WHEN: '2026-01-02T03:04:05Z',
              APP_NAME: '12345',
              APP_UNRELATED__THING: 'ignored',
              OTHER_NAME: 'not mine',
            },
          }),
        ],
      }),
    )
    expect(config.get()).toEqual({
      payment: { timeoutMs: 2500, enabled: true, mode: 'test' },
      limits: { big: 9007199254740993n, ratio: 0.25, tags: ['a', 'b'], ports: [80, 443] },
      retry: { backoff: { max_delay: 30000 } },
      labels: { teamName: 'payments' },
      extra: { a: 1, b: 'x' },
      when: new Date('2026-01-02T03:04:05Z'),
      name: '12345',
    })
  })

  it('a value that cannot be coerced fails the start with the variable named', async () => {
    const error = await createConfig({
      schema,
      sources: [
        env({
          prefix: 'APP_',
          env: {
            APP_PAYMENT__TIMEOUT_MS: 'soon',
            APP_PAYMENT__ENABLED: 'true',
            APP_PAYMENT__MODE: 'test',
            APP_NAME: 'x',
            APP_LIMITS: '{"big":"1","ratio":1,"tags":[],"ports":[]}',
            APP_RETRY: '{"backoff":{"max_delay":1}}',
            APP_LABELS: '{}',
          },
        }),
      ],
    }).catch((e: unknown) => e)
    expect(ConfigError.is(error)).toBe(true)
    const e = error as ConfigError
    expect(e.code).toBe('CONFIG_INVALID')
    expect(e.issues).toEqual([
      expect.objectContaining({ path: 'payment.timeoutMs', source: 'env:APP_', key: 'APP_PAYMENT__TIMEOUT_MS' }),
      expect.objectContaining({ path: 'limits.big', source: 'env:APP_', key: 'APP_LIMITS' }),
    ])
    expect(e.message).toContain(
      'payment.timeoutMs: Invalid input: expected number, received string (from env:APP_ APP_PAYMENT__TIMEOUT_MS)',
    )
  })
})

describe('updates', () => {
  it('every update is validated whole and applied atomically; an invalid one is rejected and the last good config stays', async () => {
    const source = memory({ payment: { timeoutMs: 100, retries: 1 } })
    const config = await track(createConfig({ schema: AppConfig, sources: [source] }))
    const events: ChangeEvent<AppConfig>[] = []
    const invalid: ConfigError[] = []
    config.on('change', (e) => events.push(e))
    config.on('invalid', (e) => invalid.push(e))

    // Two values in one update: either both are applied or neither.
    source.set({ payment: { timeoutMs: 200, retries: 11 } })
    await waitFor(() => invalid.length === 1, 'the rejection')
    expect(config.get('payment')).toEqual({ timeoutMs: 100, retries: 1, provider: 'stripe' })
    expect(invalid[0]?.issues).toEqual([
      {
        path: 'payment.retries',
        code: 'too_big',
        message: 'Too big: expected number to be <=10',
        source: 'memory',
        key: 'payment.retries',
      },
    ])
    expect(invalid[0]?.keys).toEqual(['*'])

    source.set({ payment: { timeoutMs: 200, retries: 2 } })
    await waitFor(() => events.length === 1, 'the change')
    expect(config.get('payment')).toEqual({ timeoutMs: 200, retries: 2, provider: 'stripe' })
    expect(events[0]?.changes).toEqual([
      { path: 'payment.timeoutMs', kind: 'update', prev: 100, next: 200, secret: false },
      { path: 'payment.retries', kind: 'update', prev: 1, next: 2, secret: false },
    ])
    expect(events[0]?.prev.payment.timeoutMs).toBe(100)
  })

  it('updates in one event-loop turn are applied once; debounceMs collects a burst over time', async () => {
    const source = memory({})
    const config = await track(createConfig({ schema: AppConfig, sources: [source] }))
    let changes = 0
    config.on('change', () => changes++)
    for (let i = 1; i <= 10; i++) source.put('payment.retries', i % 10)
    await waitFor(() => changes === 1, 'one change')
    expect(config.get('payment.retries')).toBe(0)

    const slow = memory({})
    const debounced = await track(createConfig({ schema: AppConfig, sources: [slow], debounceMs: 80 }))
    const seen: number[] = []
    debounced.on('change', (e) => seen.push(e.next.payment.timeoutMs))
    for (let i = 1; i <= 5; i++) {
      slow.put('payment.timeoutMs', i * 100)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await waitFor(() => seen.length > 0, 'the debounced change')
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(seen).toEqual([500])
  })

  it('watch(path) fires for its key or subtree only, with next and prev; unsubscribing stops it', async () => {
    const source = memory({})
    const config = await track(createConfig({ schema: AppConfig, sources: [source] }))
    const payment: unknown[] = []
    const retries: unknown[] = []
    const features: unknown[] = []
    config.watch('payment', (next, prev) => payment.push([prev.retries, next.retries]))
    const stop = config.watch('payment.retries', (next, prev, event) => retries.push([prev, next, event.source]))
    config.watch('features', (next) => features.push(next))
    source.put('payment.retries', 5)
    await waitFor(() => retries.length === 1, 'retries')
    source.put('features.x', true)
    await waitFor(() => features.length === 1, 'features')
    stop()
    source.put('payment.retries', 6)
    await waitFor(() => payment.length === 2, 'payment')
    expect(payment).toEqual([
      [3, 5],
      [5, 6],
    ])
    expect(retries).toEqual([[3, 5, 'memory']])
    expect(features).toEqual([{ x: true }])
  })

  it('listeners that throw are reported as `error`, never stop the others; once/off work', async () => {
    const source = memory({})
    const { lines, logger } = recordingLogger()
    const config = await track(createConfig({ schema: AppConfig, sources: [source], logger }))
    const calls: string[] = []
    const errors: string[] = []
    config.on('change', () => {
      calls.push('a')
      throw new Error('boom a')
    })
    const b = () => calls.push('b')
    config.on('change', b)
    config.once('change', () => calls.push('once'))
    config.on('error', (e) => {
      errors.push(e.code)
      throw new Error('the error listener throws too')
    })
    source.put('payment.retries', 1)
    await waitFor(() => calls.length === 3, 'first round')
    config.off('change', b)
    source.put('payment.retries', 2)
    await waitFor(() => calls.length === 4, 'second round')
    expect(calls).toEqual(['a', 'b', 'once', 'a'])
    expect(errors).toEqual(['CONFIG_LISTENER_FAILED', 'CONFIG_LISTENER_FAILED'])
    expect(lines.filter((l) => l.startsWith('error config listener threw'))).toHaveLength(4)
    expect(config.get('payment.retries')).toBe(2)
  })

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

describe('secrets', () => {
  it('are served by get() and redacted in toJSON, JSON.stringify, inspect, events and logs', async () => {
    const schema = z.object({
      db: z.object({ url: z.string(), password: secret(z.string().min(4)) }),
      tokens: z.array(z.object({ name: z.string(), value: z.string().meta({ secret: true }) })).default([]),
    })
    const source = memory({
      db: { url: 'postgres://db', password: 'hunter22' },
      tokens: [{ name: 't', value: 'tok-1' }],
    })
    const { lines, logger } = recordingLogger()
    const config = await track(createConfig({ schema, sources: [source], logger }))
    expect(config.get('db.password')).toBe('hunter22')
    expect(config.get().tokens[0]?.value).toBe('tok-1')
    expect(config.toJSON()).toEqual({
      db: { url: 'postgres://db', password: '[redacted]' },
      tokens: [{ name: 't', value: '[redacted]' }],
    })
    for (const text of [
      JSON.stringify(config),
      JSON.stringify(config.get()),
      JSON.stringify(config.get('db')),
      inspect(config.get(), { depth: 5 }),
    ]) {
      expect(text).not.toMatch(/hunter22|tok-1/)
      expect(text).toContain('[redacted]')
    }
    const invalid = new Promise<ConfigError>((resolve) => config.once('invalid', resolve))
    source.put('db.password', 'abc')
    expect((await invalid).message).not.toContain('abc')
    const change = new Promise<ChangeEvent<unknown>>((resolve) => config.once('change', resolve))
    source.put('db.password', 'correct-horse')
    const event = await change
    expect(event.changes).toEqual([
      { path: 'db.password', kind: 'update', prev: '[redacted]', next: '[redacted]', secret: true },
    ])
    expect(JSON.stringify(event)).not.toMatch(/hunter22|correct-horse/)
    expect(lines.join('\n')).not.toMatch(/hunter22|correct-horse|tok-1/)
    expect(config.get('db.password')).toBe('correct-horse')
  })
})

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
      createConfig({ schema: AppConfig, sources: [flaky], snapshot: path, retry: { minDelayMs: 20, maxDelayMs: 40 } }),
    )
    expect(config.stale).toBe(true)
    expect(config.get('payment.timeoutMs')).toBe(42)
    await waitFor(() => loads >= 4, 'retries')
    up = true
    await waitFor(() => !config.stale, 'the recovery')
  })
})

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
      'startTimeout: Too small: expected number to be >0',
      '(options): unknown option(s) "colour"',
    ])
    expect(() => env({ prefix: '' })).toThrow(/invalid env source options: prefix: expected a prefix such as "APP_"/)
    expect(() => file('x.yaml', { format: 'toml' as never })).toThrow(ConfigError)
  })

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

  it('without etcd3 installed the etcd subpath says: npm install etcd3', async () => {
    const missing = Object.assign(new Error("Cannot find package 'etcd3'"), { code: 'ERR_MODULE_NOT_FOUND' })
    const error = await loadEtcd3(() => Promise.reject(missing)).catch((e: unknown) => e)
    expect(ConfigError.is(error) && error.code).toBe('CONFIG_ETCD_MISSING')
    expect((error as Error).message).toContain('npm install etcd3')
    expect(typeof (await loadEtcd3()).Etcd3).toBe('function')
  })
})
