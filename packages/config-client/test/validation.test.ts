/** Every update validated whole and applied atomically; rejected ones traced to their source. */
import { describe, expect, it } from 'vitest'
import { type ChangeEvent, type ConfigError, createConfig, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

closeTrackedAfterEach()

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
})
