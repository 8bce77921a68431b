/** The core's time and retry options: durations, the one retry shape, and the old names (deprecated). */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createBroker, type SubscribeOptions } from '../src/index.js'
import {
  brokerOptionsSchema,
  parseOptions,
  renameBrokerOptions,
  renameSubscribeOptions,
  subscribeOptionsSchema,
} from '../src/options.js'
import { sleep } from './sleep.js'

const subscribe = (input: SubscribeOptions) =>
  parseOptions(subscribeOptionsSchema, renameSubscribeOptions(input), 'subscribe')

function warnings() {
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
  return {
    spy,
    messages: () => spy.mock.calls.map((call) => String(call[0])),
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('durations', () => {
  it('reads heartbeat, dedupe.ttl and the retry delays as ms or duration strings', () => {
    const options = subscribe({
      heartbeat: '2s',
      dedupe: { ttl: '1h30m' },
      retry: { initialDelay: '250ms', maxDelay: '1m' },
    })
    expect(options.heartbeat).toBe(2_000)
    expect(options.dedupe).toMatchObject({ ttl: 5_400_000 })
    expect(options.retry).toEqual({ maxAttempts: 3, initialDelay: 250, maxDelay: 60_000, factor: 2, jitter: 'full' })
    expect(parseOptions(brokerOptionsSchema, renameBrokerOptions({ closeTimeout: '1w' }), 'broker').closeTimeout).toBe(
      604_800_000,
    )
  })

  it('keeps the defaults: 3 attempts, 100 ms doubling to 30 s with full jitter, heartbeat 3 s, close 10 s', () => {
    const options = subscribe({})
    expect(options.retry).toEqual({ maxAttempts: 3, initialDelay: 100, maxDelay: 30_000, factor: 2, jitter: 'full' })
    expect(options.heartbeat).toBe(3_000)
    expect(parseOptions(brokerOptionsSchema, {}, 'broker').closeTimeout).toBe(10_000)
  })

  it('says what a duration should look like', () => {
    expect(() => subscribe({ heartbeat: 'often' })).toThrow(/heartbeat: expected a duration like 500ms/)
  })
})

describe('old option names', () => {
  it('heartbeatMs is heartbeat, with one deprecation warning', () => {
    const { spy, messages } = warnings()
    expect(subscribe({ heartbeatMs: 1_000 }).heartbeat).toBe(1_000)
    expect(subscribe({ heartbeatMs: 1_000, heartbeat: '5s' }).heartbeat).toBe(5_000)
    expect(spy).toHaveBeenCalledTimes(1)
    expect(messages()[0]).toContain('"heartbeatMs" is deprecated, use "heartbeat"')
  })

  it('closeTimeoutMs is closeTimeout, with one deprecation warning', () => {
    const { spy } = warnings()
    const parse = (input: object) => parseOptions(brokerOptionsSchema, renameBrokerOptions(input), 'broker')
    expect(parse({ closeTimeoutMs: 500 }).closeTimeout).toBe(500)
    expect(parse({ closeTimeoutMs: 500 }).closeTimeout).toBe(500)
    expect(spy).toHaveBeenCalledTimes(1)
  })

  it('maxAttempts and backoff go into retry, with one warning each; retry wins field by field', () => {
    const { spy, messages } = warnings()
    const old = { maxAttempts: 5, backoff: { initialMs: 10, maxMs: 40, multiplier: 3, jitter: 'none' as const } }
    expect(subscribe(old).retry).toEqual({ maxAttempts: 5, initialDelay: 10, maxDelay: 40, factor: 3, jitter: 'none' })
    expect(subscribe({ ...old, retry: { maxAttempts: 2, maxDelay: '1s' } }).retry).toEqual({
      maxAttempts: 2,
      initialDelay: 10,
      maxDelay: 1_000,
      factor: 3,
      jitter: 'none',
    })
    expect(subscribe({ backoff: { initialMs: 7 } }).retry).toMatchObject({ maxAttempts: 3, initialDelay: 7 })
    expect(spy).toHaveBeenCalledTimes(2)
    expect(messages().join('\n')).toMatch(/"maxAttempts" is deprecated, use "retry.maxAttempts"/)
    expect(messages().join('\n')).toMatch(/"backoff" is deprecated, use "retry"/)
  })

  it('still dead-letters after the old maxAttempts, waiting the old backoff', async () => {
    const broker = await createBroker('memory://old-retry')
    const attempts: number[] = []
    const letters: unknown[] = []
    await broker.subscribe('t.dlq', (m) => void letters.push(m.data))
    await broker.subscribe(
      't',
      (m) => {
        attempts.push(m.attempt)
        throw new Error('no')
      },
      { maxAttempts: 2, backoff: { initialMs: 1, maxMs: 1, jitter: 'none' } },
    )
    await broker.publish('t', 1)
    const deadline = Date.now() + 3_000
    while (letters.length === 0 && Date.now() < deadline) await sleep(10)
    expect(attempts).toEqual([1, 2])
    expect(letters).toEqual([1])
    await broker.close()
  })
})
