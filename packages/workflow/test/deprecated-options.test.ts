/**
 * The old option names (leaseMs, pollMs, waitFor's timeoutMs) still work and warn once per process
 * each. In a file of their own: the warnings are once per process (per test file under vitest).
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createEngine, memoryStore } from '../src/index.js'
import { parseEngineOptions } from '../src/options.js'
import { order } from './fixtures/order.js'

afterEach(() => {
  vi.restoreAllMocks()
})

const deprecations = (spy: ReturnType<typeof vi.spyOn>) =>
  spy.mock.calls.filter((call: unknown[]) => (call[1] as { type?: string })?.type === 'DeprecationWarning')

describe('old option names', () => {
  it('leaseMs is leaseTimeout, with one DeprecationWarning', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const base = { store: memoryStore(), machines: [order] }
    expect(parseEngineOptions({ ...base, leaseMs: 5000 }).leaseTimeout).toBe(5000)
    expect(parseEngineOptions({ ...base, leaseMs: '10s' }).leaseTimeout).toBe(10_000)
    // Both given: the new name wins.
    expect(parseEngineOptions({ ...base, leaseMs: 5000, leaseTimeout: '1m' }).leaseTimeout).toBe(60_000)
    expect(deprecations(warn)).toEqual([
      [
        'createEngine: option "leaseMs" is deprecated, use "leaseTimeout" (same meaning; it also accepts a duration string like "30s")',
        { type: 'DeprecationWarning', code: 'BACKPLANE_DEP_WORKFLOW:createEngine.leaseMs' },
      ],
    ])
  })

  it('pollMs is pollInterval, with one DeprecationWarning', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const base = { store: memoryStore(), machines: [order] }
    expect(parseEngineOptions({ ...base, pollMs: 50 }).pollInterval).toBe(50)
    expect(parseEngineOptions({ ...base, pollMs: 75 }).pollInterval).toBe(75)
    expect(deprecations(warn)).toHaveLength(1)
    expect(deprecations(warn)[0]?.[1]).toEqual({
      type: 'DeprecationWarning',
      code: 'BACKPLANE_DEP_WORKFLOW:createEngine.pollMs',
    })
  })

  it("waitFor's timeoutMs is timeout, with one DeprecationWarning", async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const engine = await createEngine({ store: memoryStore(), machines: [order], worker: false })
    try {
      await engine.start(order, { id: 'o-1', input: { orderId: 'o-1', amount: 5 } })
      for (const _ of [1, 2]) {
        const error = await engine.waitFor('o-1', () => false, { timeoutMs: 30 }).catch((e: unknown) => e)
        expect((error as Error).message).toMatch(/^waitFor\(o-1\) timed out after 30 ms/)
      }
      expect(deprecations(warn)).toHaveLength(1)
      expect(deprecations(warn)[0]?.[1]).toEqual({
        type: 'DeprecationWarning',
        code: 'BACKPLANE_DEP_WORKFLOW:waitFor.timeoutMs',
      })
    } finally {
      await engine.close()
    }
  })
})
