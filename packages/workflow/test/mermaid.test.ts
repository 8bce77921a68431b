import { describe, expect, it } from 'vitest'
import { toMermaid } from '../src/index.js'
import { counter } from './fixtures/counter.js'
import { order } from './fixtures/order.js'

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
