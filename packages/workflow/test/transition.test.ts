/** The pure core: transitions computed without a store or an engine. */
import { describe, expect, it } from 'vitest'
import { type InstanceRecord, initialStep, transition } from '../src/store-api.js'
import { counter, NOW } from './fixtures/counter.js'

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
