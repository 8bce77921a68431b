/** The worked test of the README's "Testing your machines": a 30-minute timeout in milliseconds. */
import { afterEach, describe, expect, it } from 'vitest'
import { WorkflowError } from '../src/index.js'
import { order } from '../src/testing/order-machine.js'
import { type TestEngine, testEngine } from '../src/testing/test-engine.js'

const noop = async () => ({})
let running: TestEngine | undefined
afterEach(async () => {
  await running?.close()
  running = undefined
})

describe('testEngine: an engine on a simulated clock', () => {
  it('cancels an order whose payment never answers after 30 simulated minutes, not before', async () => {
    const started = Date.now()
    running = await testEngine({
      machines: [order],
      activityTimeout: '1h', // the order's own 30-minute timeout comes first
      activities: {
        chargeCard: () => new Promise(() => {}), // a gateway that never answers
        reserveStock: async () => ({}),
        refund: async () => ({ refundId: 'r-1' }),
      },
    })
    const { engine, clock } = running
    await engine.start(order, { id: 'o-1', input: { orderId: 'o-1', amount: 5 } })
    await engine.send('o-1', { type: 'SUBMIT' })

    await clock.advance('29m')
    expect((await engine.get('o-1')).state).toBe('paymentPending')
    await clock.advance('1m')
    const cancelled = await engine.get('o-1')
    expect(cancelled.state).toBe('cancelled')
    expect(cancelled.context).toMatchObject({ reason: 'payment timed out' })
    expect(Date.now() - started).toBeLessThan(10_000) // 30 minutes did not pass for real
  })

  it('fires activity timeouts on the simulated clock too, and keeps what the engine published', async () => {
    running = await testEngine({
      machines: [order],
      activityTimeout: '2m',
      retry: { maxAttempts: 2, initialDelay: '1m', jitter: 'none' },
      activities: { chargeCard: () => new Promise(() => {}), reserveStock: noop, refund: noop },
    })
    const { engine, clock, broker } = running
    await engine.start(order, { id: 'o-3', input: { orderId: 'o-3', amount: 5 } })
    await engine.send('o-3', { type: 'SUBMIT' })
    await clock.advance('5m') // 2 m timeout, 1 m wait, 2 m timeout
    const instance = await engine.get('o-3')
    expect(instance.state).toBe('cancelled')
    expect(String((instance.context as { reason: string }).reason)).toMatch(/timed out after 120000 ms|2m|120/)
    expect(broker.published).toEqual([])
  })

  it('runs the retries of a failing activity at their simulated times, each attempt on record', async () => {
    let calls = 0
    running = await testEngine({
      machines: [order],
      retry: { maxAttempts: 3, initialDelay: '10s', factor: 2, jitter: 'none' },
      activities: {
        chargeCard: async () => {
          calls++
          if (calls < 3) throw new Error(`gateway down (${calls})`)
          return { chargeId: 'ch-1' }
        },
        reserveStock: async () => ({}),
        refund: async () => ({ refundId: 'r-1' }),
      },
    })
    const { engine, clock } = running
    await engine.start(order, { id: 'o-2', input: { orderId: 'o-2', amount: 5 } })
    await engine.send('o-2', { type: 'SUBMIT' })
    await clock.advance(0)
    expect(calls).toBe(1)
    await clock.advance('9s')
    expect(calls).toBe(1)
    await clock.advance('1s') // 10 s after the first failure
    expect(calls).toBe(2)
    await clock.advance('20s') // 20 s after the second
    expect(calls).toBe(3)
    expect((await engine.get('o-2')).state).toBe('shipping')

    const history = await engine.history('o-2')
    const attempts = history.filter((h) => h.kind === 'activity.attempt')
    expect(attempts.map((h) => (h.event as { attempt: number }).attempt)).toEqual([1, 2])
    expect(attempts.map((h) => (h.event as { error: { message: string } }).error.message)).toEqual([
      'gateway down (1)',
      'gateway down (2)',
    ])
    // One history row per revision: no gaps.
    expect(history.map((h) => h.seq)).toEqual(history.map((_, i) => i + 1))
  })

  it('refuses a duration it cannot read with what it expected', async () => {
    running = await testEngine({
      machines: [order],
      activities: { chargeCard: noop, reserveStock: noop, refund: noop },
    })
    const error = await running.clock.advance('soon').catch((e: unknown) => e)
    expect(WorkflowError.is(error, 'WORKFLOW_INVALID_OPTIONS')).toBe(true)
    expect(String(error)).toMatch(/expected a duration like 500ms/)
  })
})
