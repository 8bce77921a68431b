/** The pure core: transitions, validation, Mermaid, durations, the manual clock, option checks. */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { parseDuration } from '../src/duration.js'
import {
  createEngine,
  defineMachine,
  type InstanceRecord,
  initialStep,
  manualClock,
  memoryStore,
  toMermaid,
  transition,
  validateMachines,
  type WorkflowError,
} from '../src/index.js'
import { order } from './fixtures/order.js'

const NOW = Date.UTC(2030, 0, 1)

const counter = defineMachine({
  id: 'counter',
  context: z.object({ n: z.number().int().max(10), log: z.array(z.string()).default([]) }),
  initial: 'idle',
  on: { RESET: { target: 'idle', assign: () => ({ n: 0 }) } },
  states: {
    idle: {
      entry: { assign: (c) => ({ log: [...c.log, 'enter idle'] }) },
      exit: { assign: (c) => ({ log: [...c.log, 'exit idle'] }) },
      on: {
        INC: [
          {
            guard: function isBig(_c, e) {
              return e.by === 'big'
            },
            target: 'busy',
            assign: (c) => ({ n: c.n + 5 }),
          },
          { assign: (c) => ({ n: c.n + 1 }), emit: (c) => ({ topic: 'counts', key: 'k', data: { n: c.n } }) },
        ],
        BOOM: {
          assign: () => {
            throw new Error('kaboom')
          },
        },
        BREAK: { assign: () => ({ n: 99 }) },
      },
    },
    busy: {
      entry: {
        emit: (c, e) => [
          { topic: 'busy', data: { n: c.n, via: e.type } },
          { topic: 'audit', data: 'busy' },
        ],
      },
      invoke: { activity: 'work', input: (c) => ({ n: c.n }), onDone: 'idle' },
      after: { '10s': 'idle', '1h': 'done' },
      on: { FINISH: 'done' },
    },
    done: { type: 'final' },
  },
})

function start(): InstanceRecord {
  const step = initialStep(counter, 'c-1', { n: 0 }, NOW)
  if (step.type !== 'step') throw new Error(step.type)
  return step.instance
}

describe('transition (pure)', () => {
  it('starts in the initial state with its entry actions run and the schema defaults applied', () => {
    const step = initialStep(counter, 'c-1', { n: 0 }, NOW)
    expect(step).toMatchObject({
      type: 'step',
      instance: {
        id: 'c-1',
        state: 'idle',
        status: 'running',
        revision: 1,
        context: { n: 0, log: ['enter idle'] },
        timers: [],
        tasks: [],
      },
      history: { kind: 'start', from: null, to: 'idle', seq: 1 },
    })
  })

  it('takes the first alternative whose guard passes; an internal transition keeps the state and emits', () => {
    const s0 = start()
    const small = transition(counter, s0, { kind: 'event', event: { type: 'INC' } }, NOW + 1)
    expect(small).toMatchObject({
      type: 'step',
      workReplaced: false,
      instance: { state: 'idle', context: { n: 1, log: ['enter idle'] }, revision: 2 },
    })
    expect(small.type === 'step' && small.outbox).toEqual([
      {
        id: 'c-1/2/1',
        instanceId: 'c-1',
        topic: 'counts',
        key: 'k',
        headers: undefined,
        data: { n: 1 },
        createdAt: NOW + 1,
      },
    ])
    const big = transition(counter, s0, { kind: 'event', event: { type: 'INC', by: 'big' } }, NOW + 1)
    if (big.type !== 'step') throw new Error(big.type)
    // exit of idle, then the transition's assign, then busy's entry (which emits two messages)
    expect(big.instance).toMatchObject({ state: 'busy', context: { n: 5, log: ['enter idle', 'exit idle'] } })
    expect(big.outbox.map((m) => [m.id, m.topic, m.data])).toEqual([
      ['c-1/2/1', 'busy', { n: 5, via: 'INC' }],
      ['c-1/2/2', 'audit', 'busy'],
    ])
    expect(big.instance.timers).toEqual([
      { id: '2:10s', delay: '10s', deadline: NOW + 1 + 10_000 },
      { id: '2:1h', delay: '1h', deadline: NOW + 1 + 3_600_000 },
    ])
    expect(big.instance.tasks).toEqual([
      { id: '2', activity: 'work', input: { n: 5 }, key: 'c-1/busy/2', attempt: 1, runAt: NOW + 1 },
    ])
  })

  it('fires timers and applies activity results only while they are pending', () => {
    const busy = transition(counter, start(), { kind: 'event', event: { type: 'INC', by: 'big' } }, NOW)
    if (busy.type !== 'step') throw new Error(busy.type)
    const fired = transition(counter, busy.instance, { kind: 'timer', timerId: '2:10s' }, NOW + 10_000)
    expect(fired).toMatchObject({
      type: 'step',
      history: { kind: 'timer', event: { type: 'after', delay: '10s' }, from: 'busy', to: 'idle' },
      instance: { timers: [], tasks: [] },
    })
    if (fired.type !== 'step') throw new Error(fired.type)
    expect(transition(counter, fired.instance, { kind: 'timer', timerId: '2:1h' }, NOW)).toEqual({ type: 'stale' })
    expect(transition(counter, fired.instance, { kind: 'activity.done', taskId: '2', output: 1 }, NOW)).toEqual({
      type: 'stale',
    })
    const done = transition(counter, busy.instance, { kind: 'activity.done', taskId: '2', output: { ok: true } }, NOW)
    expect(done).toMatchObject({
      type: 'step',
      history: { kind: 'activity.done', event: { output: { ok: true } } },
      instance: { state: 'idle' },
    })
  })

  it('reaches a final state: status done, no pending work; nothing is accepted after', () => {
    const busy = transition(counter, start(), { kind: 'event', event: { type: 'INC', by: 'big' } }, NOW)
    if (busy.type !== 'step') throw new Error(busy.type)
    const done = transition(counter, busy.instance, { kind: 'event', event: { type: 'FINISH' } }, NOW)
    expect(done).toMatchObject({ type: 'step', instance: { state: 'done', status: 'done', timers: [], tasks: [] } })
    if (done.type !== 'step') throw new Error(done.type)
    expect(transition(counter, done.instance, { kind: 'event', event: { type: 'RESET' } }, NOW)).toEqual({
      type: 'not-accepted',
      reason: 'the instance is done',
    })
  })

  it('applies machine-wide transitions in every state that does not override them', () => {
    const busy = transition(counter, start(), { kind: 'event', event: { type: 'INC', by: 'big' } }, NOW)
    if (busy.type !== 'step') throw new Error(busy.type)
    expect(transition(counter, busy.instance, { kind: 'event', event: { type: 'RESET' } }, NOW)).toMatchObject({
      instance: { state: 'idle', context: { n: 0 } },
    })
  })

  it('reports events a state does not accept, throwing actions and a context that breaks the schema', () => {
    const s0 = start()
    expect(transition(counter, s0, { kind: 'event', event: { type: 'FINISH' } }, NOW)).toEqual({
      type: 'not-accepted',
      reason: 'state idle does not accept FINISH',
    })
    const boom = transition(counter, s0, { kind: 'event', event: { type: 'BOOM' } }, NOW)
    expect(boom.type === 'error' && [boom.error.code, boom.error.message]).toEqual([
      'WORKFLOW_ACTION_FAILED',
      'transition BOOM in idle assign threw: Error: kaboom',
    ])
    const broken = transition(counter, s0, { kind: 'event', event: { type: 'BREAK' } }, NOW)
    expect(broken.type === 'error' && broken.error.code).toBe('WORKFLOW_INVALID_CONTEXT')
    expect(broken.type === 'error' && broken.error.details[0]).toMatch(/^n: /)
  })
})

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
        'machine "bad" v1: state a.after: invalid delay "soon": expected a duration like 500ms, 30s, 15m, 2h, 1d or a number of milliseconds',
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
    const options = (await createEngine({ store: {} as never, machines: [], leaseMs: 'soon', extra: 1 } as never).catch(
      (e: unknown) => e,
    )) as WorkflowError
    expect(options.code).toBe('WORKFLOW_INVALID_OPTIONS')
    expect(options.details).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^store: expected a store: memoryStore\(\)/),
        'machines: expected at least one machine',
        expect.stringMatching(/^leaseMs: invalid leaseMs "soon": expected a duration/),
        '(options): unknown option(s) "extra"',
      ]),
    )
  })
})

describe('toMermaid', () => {
  it('draws every state and transition with its event, guard, delay and activity', () => {
    const text = toMermaid(counter)
    expect(text.split('\n')).toEqual(
      expect.arrayContaining([
        'stateDiagram-v2',
        '  [*] --> idle',
        '  idle --> busy: INC [isBig]',
        '  idle --> idle: INC (internal)',
        '  busy: invoke work',
        '  busy --> idle: done work',
        '  busy --> idle: after 10s',
        '  busy --> done: after 1h',
        '  busy --> idle: RESET',
        '  done --> [*]',
      ]),
    )
    expect(toMermaid(order)).toContain('  paymentPending --> cancelled: after 30m')
  })
})

describe('durations and the manual clock', () => {
  it('parses durations and refuses what is not one', () => {
    expect(['500ms', '30s', '15m', '2h', '1d', '1w', '1h30m', '250', 1000].map((d) => parseDuration(d))).toEqual([
      500, 30_000, 900_000, 7_200_000, 86_400_000, 604_800_000, 5_400_000, 250, 1000,
    ])
    expect(['', 'soon', '-1s', '5 parsecs', -1, Number.NaN].map((d) => parseDuration(d))).toEqual(
      Array(6).fill(undefined),
    )
  })

  it('runs callbacks in time order as it advances, and only those due', async () => {
    const clock = manualClock(NOW)
    const seen: string[] = []
    clock.setTimeout(() => seen.push('b'), 200)
    clock.setTimeout(() => seen.push('a'), 100)
    const cancelled = clock.setTimeout(() => seen.push('never'), 150)
    clock.clearTimeout(cancelled)
    await clock.advance(150)
    expect(seen).toEqual(['a'])
    await clock.advance(50)
    expect(seen).toEqual(['a', 'b'])
    expect(clock.now()).toBe(NOW + 200)
    expect(clock.pending).toBe(0)
  })
})
