/** Definition checks: validateMachines, and createEngine running them after its option checks. */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, defineMachine, memoryStore, validateMachines, type WorkflowError } from '../src/index.js'
import { order } from './fixtures/order.js'

describe('validateMachines', () => {
  it('lists every problem of a definition in one WORKFLOW_INVALID_DEFINITION', () => {
    const bad = defineMachine({
      id: 'bad',
      context: z.object({}),
      initial: 'a',
      states: {
        a: { on: { GO: 'nowhere', OK: 'b' }, after: { soon: 'b' }, invoke: { activity: 'missing', onDone: 'b' } },
        b: { type: 'final', on: { BACK: 'a' } },
        orphan: { entry: { emit: () => ({ topic: 't', data: 1 }) } },
      },
    })
    const error = (() => {
      try {
        validateMachines([bad, bad], { activities: new Set(['present']), broker: false })
      } catch (e) {
        return e as WorkflowError
      }
    })()
    expect(error?.code).toBe('WORKFLOW_INVALID_DEFINITION')
    expect(error?.details).toEqual(
      expect.arrayContaining([
        'machine "bad" v1 is registered twice',
        'machine "bad" v1: state a.on.GO: unknown target state "nowhere"',
        'machine "bad" v1: state a.after: invalid delay "soon": expected a duration like 500ms, 1.5s, 30s, 15m, 2h, 1h30m, 1d, 1w or a number of milliseconds',
        expect.stringMatching(
          /^machine "bad" v1: state a\.invoke: activity "missing" is not registered: pass it in createEngine\(\{ activities/,
        ),
        'machine "bad" v1: state b: a final state cannot have on',
        'machine "bad" v1: state orphan is unreachable from the initial state a',
        expect.stringMatching(/emits messages \(in orphan\) but createEngine was given no broker/),
      ]),
    )
  })

  it('accepts the order example', () => {
    expect(() =>
      validateMachines([order], { activities: new Set(['chargeCard', 'reserveStock', 'refund']), broker: true }),
    ).not.toThrow()
    expect(() => validateMachines([order], { activities: new Set(['chargeCard']) })).toThrow(
      /activity "reserveStock" is not registered/,
    )
  })

  it('is what createEngine runs, with options checked first', async () => {
    const error = (await createEngine({ store: memoryStore(), machines: [order], activities: {} }).catch(
      (e: unknown) => e,
    )) as WorkflowError
    expect(error.code).toBe('WORKFLOW_INVALID_DEFINITION')
    expect(error.details).toHaveLength(4) // three activities, and emits without a broker
    const options = (await createEngine({
      store: {} as never,
      machines: [],
      leaseTimeout: 'soon',
      extra: 1,
    } as never).catch((e: unknown) => e)) as WorkflowError
    expect(options.code).toBe('WORKFLOW_INVALID_OPTIONS')
    expect(options.details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^store: expected a store: memoryStore\(\)/),
        'machines: expected at least one machine',
        expect.stringMatching(/^leaseTimeout: expected a duration like 500ms, .* got "soon"/),
        '(options): unknown option(s) "extra"',
      ]),
    )
  })
})
