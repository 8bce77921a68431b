/** When updates are applied: together per callback, or collected over a debounce window. */
import { describe, expect, it } from 'vitest'
import { createConfig, memory } from '../src/index.js'
import { closeTrackedAfterEach, track } from './helpers/config.js'
import { waitFor } from './helpers/env.js'
import { AppConfig } from './helpers/schema.js'

closeTrackedAfterEach()

describe('updates', () => {
  it('updates in one event-loop turn are applied once; debounce collects a burst over time', async () => {
    const source = memory({})
    const config = await track(createConfig({ schema: AppConfig, sources: [source] }))
    let changes = 0
    config.on('change', () => changes++)
    for (let i = 1; i <= 10; i++) source.put('payment.retries', i % 10)
    await waitFor(() => changes === 1, 'one change')
    expect(config.get('payment.retries')).toBe(0)

    const slow = memory({})
    const debounced = await track(createConfig({ schema: AppConfig, sources: [slow], debounce: 80 }))
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
})
