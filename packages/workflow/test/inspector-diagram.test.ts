import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineMachine, type HistoryEntry, toMermaid } from '../src/index.js'
import { definitionGraph, observedGraph } from '../src/ui/graph.js'
import { layoutGraph } from '../src/ui/layout.js'
import { shopOrder } from './helpers/inspector.js'

const edges = (graph: { edges: readonly { from: string; to: string; labels: readonly string[] }[] }) =>
  graph.edges.flatMap((e) => e.labels.map((l) => `${e.from} -> ${e.to}: ${l}`)).sort()

describe('the diagram the inspector draws', () => {
  it('has every state and transition of the definition, machine-level ones once', () => {
    const graph = definitionGraph(shopOrder)
    expect(graph.initial).toBe('created')
    expect(graph.states).toEqual([
      { name: 'created', final: false, invoke: undefined },
      { name: 'paying', final: false, invoke: 'charge' },
      { name: 'shipping', final: false, invoke: undefined },
      { name: 'delivered', final: true, invoke: undefined },
      { name: 'cancelled', final: true, invoke: undefined },
    ])
    expect(edges(graph)).toEqual([
      'created -> paying: SUBMIT',
      'paying -> cancelled: after 30m',
      'paying -> shipping: done charge',
      'shipping -> delivered: DELIVERED',
      'shipping -> delivered: after 2h',
    ])
    expect(graph.anywhere).toEqual([{ label: 'CANCEL', to: 'cancelled' }])
  })

  it('reads state names that are not identifiers, guards and internal transitions back from toMermaid', () => {
    const odd = defineMachine({
      id: 'odd',
      context: z.object({}),
      initial: 'waiting "room"',
      on: { PING: { assign: () => ({}) } },
      states: {
        'waiting "room"': {
          on: {
            GO: [
              {
                target: 'in-flight',
                guard: function ready() {
                  return true
                },
              },
              'done: ok',
            ],
            PING: 'done: ok',
          },
        },
        'in-flight': { after: { '5s': 'done: ok' } },
        'done: ok': { type: 'final' },
      },
    })
    expect(toMermaid(odd)).toContain('state "waiting \'room\'"')
    const graph = definitionGraph(odd)
    expect(graph.initial).toBe('waiting "room"')
    expect(graph.states.map((s) => [s.name, s.final])).toEqual([
      ['waiting "room"', false],
      ['in-flight', false],
      ['done: ok', true],
    ])
    expect(edges(graph)).toEqual([
      'in-flight -> done: ok: after 5s',
      'waiting "room" -> done: ok: GO',
      'waiting "room" -> done: ok: PING',
      'waiting "room" -> in-flight: GO [ready]',
    ])
    // PING is the state's own in 'waiting "room"': machine-wide it only applies to in-flight (internal).
    expect(graph.anywhere).toEqual([{ label: 'PING (internal)', to: null }])
  })

  it('without a definition, draws the transitions seen in histories', () => {
    const at = new Date(0)
    const h = (seq: number, kind: HistoryEntry['kind'], event: unknown, from: string | null, to: string) => ({
      seq,
      at,
      kind,
      event,
      from,
      to,
    })
    const graph = observedGraph(
      [
        [
          h(1, 'start', { type: 'start' }, null, 'a'),
          h(2, 'event', { type: 'GO' }, 'a', 'b'),
          h(3, 'timer', { type: 'after', delay: '1m' }, 'b', 'c'),
        ],
        [
          h(1, 'start', {}, null, 'a'),
          h(2, 'ignored', { type: 'X' }, 'a', 'a'),
          h(3, 'activity.error', { activity: 'pay' }, 'a', 'c'),
        ],
      ],
      new Set(['c']),
      ['z'],
    )
    expect(graph.initial).toBe('a')
    expect(graph.states).toEqual([
      { name: 'a', final: false },
      { name: 'b', final: false },
      { name: 'c', final: true },
      { name: 'z', final: false },
    ])
    expect(edges(graph)).toEqual(['a -> b: GO', 'a -> c: error pay', 'b -> c: after 1m'])
  })

  it('lays states out in layers down from the initial one, inside the drawing, none overlapping', () => {
    const diagram = layoutGraph(definitionGraph(shopOrder))
    const node = (name: string) => diagram.nodes.find((n) => n.name === name) as (typeof diagram.nodes)[number]
    expect(node('created').y).toBeLessThan(node('paying').y)
    expect(node('paying').y).toBeLessThan(node('shipping').y)
    expect(node('shipping').y).toBeLessThan(node('delivered').y)
    expect(node('created').initial).toBe(true)
    for (const a of diagram.nodes) {
      expect(a.x).toBeGreaterThanOrEqual(0)
      expect(a.x + a.width).toBeLessThanOrEqual(diagram.width)
      expect(a.y + a.height).toBeLessThanOrEqual(diagram.height)
      for (const b of diagram.nodes) {
        if (a === b) continue
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y
        expect(apart, `${a.name} and ${b.name} overlap`).toBe(true)
      }
    }
    expect(diagram.edges).toHaveLength(4)
    for (const edge of diagram.edges) expect(edge.path).toMatch(/^M[\d.]+,[\d.]+ C/)
    expect(diagram.start?.path).toMatch(/^M/)
  })
})
