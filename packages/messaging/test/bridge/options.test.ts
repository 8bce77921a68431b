/** The bridge's time and retry options: durations, the retry shape, and the old names (deprecated). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { loadBridgeConfig } from '../../src/bridge/index.js'
import { parseBridgeOptions } from '../../src/bridge/options.js'

const base = { brokers: { m: 'memory://' }, store: false as const }
const retry = (maxAttempts: number, initialDelay: number, maxDelay: number) => ({
  maxAttempts,
  initialDelay,
  maxDelay,
  factor: 2,
  jitter: 'full',
})
const times = (options: ReturnType<typeof parseBridgeOptions>) => ({
  requestTimeout: options.limits.requestTimeout,
  webhookTimeout: options.webhooks.timeout,
  maxRetryAfter: options.webhooks.maxRetryAfter,
  webhookRetry: options.webhooks.retry,
  routingRetry: options.routing.retry,
  heartbeat: options.sse.heartbeat,
  idempotencyTtl: options.idempotency.ttl,
})
const dir = mkdtempSync(join(tmpdir(), 'bridge-options-'))

afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(() => {
  vi.restoreAllMocks()
})

describe('durations', () => {
  it('reads every time option as ms or a duration string', () => {
    const options = parseBridgeOptions({
      ...base,
      brokers: { m: { url: 'memory://', closeTimeout: '2s' } },
      limits: { requestTimeout: '45s' },
      webhooks: {
        timeout: '1.5s',
        maxRetryAfter: '15m',
        retry: { maxAttempts: 4, initialDelay: '2s', maxDelay: '1h' },
      },
      routing: { retry: { initialDelay: '500ms' } },
      sse: { heartbeat: '30s' },
      idempotency: { ttl: '1d' },
      store: { etcd: { endpoints: 'http://h:2379', timeout: '3s' } },
    })
    expect(options.brokers.m).toMatchObject({ closeTimeout: 2_000 })
    expect(options.store).toMatchObject({ etcd: { timeout: 3_000 } })
    expect(times(options)).toEqual({
      requestTimeout: 45_000,
      webhookTimeout: 1_500,
      maxRetryAfter: 900_000,
      webhookRetry: retry(4, 2_000, 3_600_000),
      routingRetry: retry(10, 500, 30_000),
      heartbeat: 30_000,
      idempotencyTtl: 86_400_000,
    })
  })

  it('keeps the defaults', () => {
    expect(times(parseBridgeOptions(base))).toEqual({
      requestTimeout: 30_000,
      webhookTimeout: 10_000,
      maxRetryAfter: 600_000,
      webhookRetry: retry(8, 1_000, 300_000),
      routingRetry: retry(10, 200, 30_000),
      heartbeat: 15_000,
      idempotencyTtl: 86_400_000,
    })
  })

  it('says what a duration should look like', () => {
    expect(() => parseBridgeOptions({ ...base, sse: { heartbeat: 'often' } })).toThrow(
      /sse\.heartbeat: expected a duration like 500ms/,
    )
  })
})

describe('old option names', () => {
  it('still takes each one, with one deprecation warning each; a new name given too wins', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const old = {
      ...base,
      brokers: { m: { url: 'memory://', closeTimeoutMs: 2_000 } },
      limits: { requestTimeoutMs: 45_000 },
      webhooks: { timeoutMs: 1_500, maxRetryAfterMs: 900_000, maxAttempts: 4, backoff: { initialMs: 50, maxMs: 60 } },
      routing: { maxAttempts: 2, backoff: { multiplier: 3, jitter: 'none' } },
      sse: { heartbeatMs: 30_000 },
      idempotency: { ttlMs: 1_000 },
      store: { etcd: { endpoints: 'http://h:2379', timeoutMs: 3_000 } },
    }
    const options = parseBridgeOptions(old)
    expect(options.brokers.m).toMatchObject({ closeTimeout: 2_000 })
    expect(options.limits.requestTimeout).toBe(45_000)
    expect(options.webhooks).toMatchObject({ timeout: 1_500, maxRetryAfter: 900_000 })
    expect(options.webhooks.retry).toMatchObject({ maxAttempts: 4, initialDelay: 50, maxDelay: 60 })
    expect(options.routing.retry).toMatchObject({ maxAttempts: 2, factor: 3, jitter: 'none', initialDelay: 200 })
    expect(options.sse.heartbeat).toBe(30_000)
    expect(options.idempotency.ttl).toBe(1_000)
    expect(options.store).toMatchObject({ etcd: { timeout: 3_000 } })
    // 11 old names, each warned about once, however often the options are read.
    parseBridgeOptions({ ...old, sse: { heartbeatMs: 1, heartbeat: '2s' } })
    expect(warn).toHaveBeenCalledTimes(11)
    expect(parseBridgeOptions({ ...old, sse: { heartbeatMs: 1, heartbeat: '2s' } }).sse.heartbeat).toBe(2_000)
    expect(warn.mock.calls.every((call) => (call[1] as { type?: string }).type === 'DeprecationWarning')).toBe(true)
  })

  it('in a config file too', async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const file = join(dir, 'old.yaml')
    writeFileSync(
      file,
      'brokers: { m: "memory://" }\nsse: { heartbeatMs: 200 }\nwebhooks: { timeout: 5s, maxAttempts: 2 }\n',
    )
    const config = await loadBridgeConfig(file, {})
    const options = parseBridgeOptions(config.options)
    expect(options.sse.heartbeat).toBe(200)
    expect(options.webhooks).toMatchObject({ timeout: 5_000, retry: { maxAttempts: 2 } })
  })
})
