/** Contract tests of an optional method group of the Store (schedules, flow control). */
import { it } from 'vitest'
import type { Store } from '../store.js'
import type { Suite } from './suite.js'

/**
 * `it` for the tests of one method group: each test gets a fresh store (opened) and its group as
 * `methodsOf` finds it, and is skipped on a store without the group.
 */
export function groupTest<G>(
  suite: Suite,
  methodsOf: (store: Store) => G | undefined,
): (name: string, fn: (group: G, store: Store) => Promise<void>) => void {
  return (name, fn) =>
    it(name, async (t) => {
      const store = await suite.fresh()
      const group = methodsOf(store)
      if (!group) return t.skip()
      await fn(group, store)
    })
}
