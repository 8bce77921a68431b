/** The public Config object: typed and frozen get(), watch(path), listener isolation. */
import { describe, expect, expectTypeOf, it } from 'vitest'
import { createConfig, memory } from '../src/index.js'
import { closeTrackedAfterEach, recordingLogger, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

closeTrackedAfterEach()

describe('layering', () => {
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

describe('updates', () => {
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
})
