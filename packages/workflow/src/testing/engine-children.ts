/**
 * The conformance suite's child workflows: a parent spawns a child over the store, the child's end
 * moves the parent on once, across a restart of the engine in the middle.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { manualClock } from '../clock.js'
import { createEngine } from '../engine.js'
import { defineMachine } from '../machine.js'
import type { Store } from '../store.js'
import { type Suite, T0 } from './suite.js'

const leaf = defineMachine({
  id: 'leaf',
  context: z.object({ n: z.number() }),
  initial: 'growing',
  states: {
    growing: { after: { '1m': { target: 'grown', assign: (c) => ({ n: c.n + 1 }) } } },
    grown: { type: 'final' },
  },
})

const tree = defineMachine({
  id: 'tree',
  context: z.object({ n: z.number(), got: z.number().optional() }),
  initial: 'waiting',
  states: {
    waiting: {
      spawn: {
        machine: leaf,
        input: (c) => ({ n: c.n }),
        onDone: { target: 'done', assign: (_, e) => ({ got: (e.output as { n: number }).n }) },
      },
    },
    done: { type: 'final' },
  },
})

async function eventually<T>(read: () => Promise<T>, timeout = 5000): Promise<T> {
  for (const deadline = Date.now() + timeout; ; ) {
    try {
      return await read()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

export function engineChildrenTests(name: string, suite: Suite): void {
  const { hooks, reopen, open, engines } = suite

  describe(`${name} store: child workflows`, () => {
    it('spawns a child with the parent commit and moves the parent on once when it ends, across a restart', async () => {
      const clock = manualClock(T0)
      const store = await hooks.create()
      open.push(store)
      const first = await createEngine({ store, machines: [tree, leaf], clock, closeTimeout: 50, owner: 'kids' })
      engines.push(first)
      await first.start(tree, { id: 't-1', input: { n: 41 } })
      // The child starts from the parent's outbox row, a moment after the parent's commit.
      expect((await eventually(() => first.get('t-1/waiting/1'))).state).toBe('growing')
      await first.close()

      const again: Store = await reopen(store)
      open.push(again)
      const second = await createEngine({
        store: again,
        machines: [tree, leaf],
        clock,
        closeTimeout: 50,
        owner: 'kids',
      })
      engines.push(second)
      await clock.advance('1m')
      const parent = await second.waitFor('t-1', (i) => i.status !== 'running', { timeout: '5s' })
      expect([parent.state, parent.context]).toEqual(['done', { n: 41, got: 42 }])
      const history = await second.history('t-1')
      expect(history.filter((h) => h.kind === 'child.done')).toHaveLength(1)
      expect((await second.list({ machine: 'leaf' })).instances.map((i) => [i.id, i.status])).toEqual([
        ['t-1/waiting/1', 'done'],
      ])
    })
  })
}
