/** Durations: every time option reads the grammar of @backplane/internal, strings and milliseconds alike. */
import { describe, expect, it } from 'vitest'
import { createEngine, memoryStore, WorkflowError } from '../src/index.js'
import { engineOptionsSchema, parseEngineOptions } from '../src/options.js'
import { order } from './fixtures/order.js'

describe('durations', () => {
  it('parses durations and refuses what is not one', () => {
    const closeTimeout = (value: unknown) => engineOptionsSchema.shape.closeTimeout.safeParse(value).data
    expect(['500ms', '1.5s', '30s', '15m', '2h', '1d', '1w', '1h30m', '250', 1000].map((d) => closeTimeout(d))).toEqual(
      [500, 1500, 30_000, 900_000, 7_200_000, 86_400_000, 604_800_000, 5_400_000, 250, 1000],
    )
    expect(['', 'soon', '-1s', '5 parsecs', -1, Number.NaN].map((d) => closeTimeout(d))).toEqual(
      Array(6).fill(undefined),
    )
  })

  it('takes a duration string for leaseTimeout, pollInterval, activityTimeout and closeTimeout', () => {
    const opts = parseEngineOptions({
      store: memoryStore(),
      machines: [order],
      leaseTimeout: '45s',
      pollInterval: '250ms',
      activityTimeout: '2m',
      closeTimeout: '1.5s',
    })
    expect([opts.leaseTimeout, opts.pollInterval, opts.activityTimeout, opts.closeTimeout]).toEqual([
      45_000, 250, 120_000, 1500,
    ])
    const defaults = parseEngineOptions({ store: memoryStore(), machines: [order] })
    expect([defaults.leaseTimeout, defaults.pollInterval]).toEqual([30_000, 1_000])
  })

  it('refuses a lease or poll interval of 0', () => {
    const error = (() => {
      try {
        parseEngineOptions({ store: memoryStore(), machines: [order], leaseTimeout: 0, pollInterval: '0s' })
      } catch (e) {
        return e as WorkflowError
      }
    })()
    expect(error?.code).toBe('WORKFLOW_INVALID_OPTIONS')
    expect(error?.message).toMatch(/^invalid createEngine options: leaseTimeout: expected a duration at least 1 ms/)
    expect(error?.details).toHaveLength(2)
  })

  it('takes a duration string for the timeout of waitFor', async () => {
    const engine = await createEngine({ store: memoryStore(), machines: [order], worker: false })
    try {
      await engine.start(order, { id: 'o-1', input: { orderId: 'o-1', amount: 5 } })
      const error = await engine.waitFor('o-1', () => false, { timeout: '50ms' }).catch((e: unknown) => e)
      expect(WorkflowError.is(error, 'WORKFLOW_TIMEOUT')).toBe(true)
      expect((error as Error).message).toMatch(/^waitFor\(o-1\) timed out after 50 ms/)
      const invalid = await engine.waitFor('o-1', () => true, { timeout: 'soon' }).catch((e: unknown) => e)
      expect(WorkflowError.is(invalid, 'WORKFLOW_INVALID_OPTIONS')).toBe(true)
      expect((invalid as Error).message).toMatch(/^invalid waitFor options: timeout: expected a duration like/)
    } finally {
      await engine.close()
    }
  })
})
