/**
 * The flow-control part of the Store contract (the optional `admitActivity` group): admission in
 * queue order under concurrency and rate limits (per activity and per key), stale rows, releases,
 * the pause and breaker control rows, data kept across reopening, and the limit holding across two
 * handles admitting at once. Skipped for a store without the group.
 */
import { describe, expect } from 'vitest'
import { type ControlChange, type FlowLimits, type FlowRequest, type FlowStore, flowMethods } from '../flow-store.js'
import type { Store } from '../store.js'
import { groupTest } from './method-group.js'
import { type Suite, T0 } from './suite.js'

const req = (holder: string, since: number, key: string | null = null): FlowRequest => ({ holder, key, since })

interface AskOptions {
  readonly running?: readonly string[]
  readonly staleBefore?: number
  readonly activity?: string
}

/** `owner` asks at `now` for `requests`; nothing is stale unless `staleBefore` says so. */
const ask = (
  f: FlowStore,
  owner: string,
  now: number,
  limits: FlowLimits,
  requests: readonly FlowRequest[],
  options: AskOptions = {},
) =>
  f.admitActivity({
    activity: options.activity ?? 'act',
    owner,
    now,
    limits,
    staleBefore: options.staleBefore ?? T0 - 1,
    requests,
    running: options.running ?? [],
  })

export function flowContractTests(name: string, suite: Suite): void {
  const { reopen, open } = suite
  const test = groupTest(suite, flowMethods)
  const again = async (store: Store): Promise<FlowStore> => {
    const other = await reopen(store)
    await other.open()
    open.push(other)
    return flowMethods(other) as FlowStore
  }

  describe(`${name} store: the flow-control methods`, () => {
    test('admits the earliest requests up to the concurrency, and keeps freed capacity for the next in order', async (f) => {
      const limits = { concurrency: 2 }
      expect(await ask(f, 'p1', T0, limits, [req('h5', 5), req('h2', 2), req('h4', 4), req('h1', 1)])).toEqual({
        granted: ['h1', 'h2'],
        retryAt: null,
      })
      expect(await ask(f, 'p2', T0, limits, [req('h3', 3)])).toEqual({ granted: [], retryAt: null })
      await f.releaseActivity('act', ['h1'])
      // h3 (p2's) is next: p1 asking first does not take its slot.
      expect(await ask(f, 'p1', T0 + 1, limits, [req('h4', 4), req('h5', 5)], { running: ['h2'] })).toEqual({
        granted: [],
        retryAt: null,
      })
      expect(await ask(f, 'p2', T0 + 2, limits, [req('h3', 3)])).toEqual({ granted: ['h3'], retryAt: null })
      await f.releaseActivity('act', ['h2', 'h3'])
      expect((await ask(f, 'p1', T0 + 3, limits, [req('h5', 5), req('h4', 4)])).granted).toEqual(['h4', 'h5'])
      // Ties in `since` go by holder.
      const tie = { concurrency: 1 }
      const other = { activity: 'tie' }
      expect((await ask(f, 'p1', T0, tie, [req('x-b', 7), req('x-a', 7)], other)).granted).toEqual(['x-a'])
    })

    test('limits each key on its own, passing over a full key, and not null keys', async (f) => {
      const limits = { keyConcurrency: 1 }
      const requests = [req('a1', 1, 'a'), req('a2', 2, 'a'), req('b1', 3, 'b'), req('n1', 4), req('n2', 5)]
      expect(await ask(f, 'p1', T0, limits, requests)).toEqual({ granted: ['a1', 'b1', 'n1', 'n2'], retryAt: null })
      expect((await ask(f, 'p1', T0 + 1, limits, [req('a2', 2, 'a')])).granted).toEqual([])
      await f.releaseActivity('act', ['a1'])
      expect((await ask(f, 'p1', T0 + 2, limits, [req('a2', 2, 'a')])).granted).toEqual(['a2'])
    })

    test('limits the rate of starts and says when the window next has room', async (f) => {
      const limits = { rate: { limit: 2, per: 1000 } }
      const requests = [req('r1', 1), req('r2', 2), req('r3', 3)]
      expect(await ask(f, 'p1', T0, limits, requests)).toEqual({ granted: ['r1', 'r2'], retryAt: T0 + 1000 })
      // Ending the attempts frees no room: the window counts starts.
      await f.releaseActivity('act', ['r1', 'r2'])
      expect(await ask(f, 'p1', T0 + 999, limits, [req('r3', 3)])).toEqual({ granted: [], retryAt: T0 + 1000 })
      expect(await ask(f, 'p1', T0 + 1000, limits, [req('r3', 3)])).toEqual({ granted: ['r3'], retryAt: null })
    })

    test('limits the rate of each key, reporting when the asker may retry', async (f) => {
      const limits = { keyRate: { limit: 1, per: 500 } }
      const requests = [req('x1', 1, 'x'), req('x2', 2, 'x'), req('y1', 3, 'y')]
      expect(await ask(f, 'p1', T0, limits, requests)).toEqual({ granted: ['x1', 'y1'], retryAt: T0 + 500 })
      await f.releaseActivity('act', ['x1'])
      expect(await ask(f, 'p1', T0 + 100, limits, [req('x2', 2, 'x')])).toEqual({ granted: [], retryAt: T0 + 500 })
      expect(await ask(f, 'p1', T0 + 500, limits, [req('x2', 2, 'x')])).toEqual({ granted: ['x2'], retryAt: null })
    })

    test('drops a waiting row its owner stopped refreshing: it no longer holds the queue', async (f) => {
      const limits = { concurrency: 1 }
      expect((await ask(f, 'p1', T0, limits, [req('h0', 0)])).granted).toEqual(['h0'])
      expect((await ask(f, 'p2', T0, limits, [req('w1', 1)])).granted).toEqual([])
      await f.releaseActivity('act', ['h0'])
      expect((await ask(f, 'p1', T0 + 10, limits, [req('w2', 2)])).granted).toEqual([])
      const late = { staleBefore: T0 + 500 }
      expect((await ask(f, 'p1', T0 + 1000, limits, [req('w2', 2)], late)).granted).toEqual(['w2'])
    })

    test('frees the slot of a running row not refreshed, and keeps one its owner refreshes', async (f) => {
      const limits = { concurrency: 1 }
      expect((await ask(f, 'p1', T0, limits, [req('h1', 1)])).granted).toEqual(['h1'])
      expect((await ask(f, 'p2', T0 + 100, limits, [req('h2', 2)])).granted).toEqual([])
      await ask(f, 'p1', T0 + 400, limits, [], { running: ['h1'] })
      // p2 naming h1 as running does not refresh p1's row.
      const refreshed = { staleBefore: T0 + 300, running: ['h1'] }
      expect((await ask(f, 'p2', T0 + 1000, limits, [req('h2', 2)], refreshed)).granted).toEqual([])
      const lapsed = { staleBefore: T0 + 900 }
      expect((await ask(f, 'p2', T0 + 2000, limits, [req('h2', 2)], lapsed)).granted).toEqual(['h2'])
    })

    test('a request for a running holder (taken over from a dead process) waits for its row to lapse, then runs', async (f) => {
      const limits = { keyConcurrency: 1 }
      // p1 runs h1 (key k) and dies; p2 takes the call over and asks for the same holder.
      expect((await ask(f, 'p1', T0, limits, [req('h1', 1, 'k')])).granted).toEqual(['h1'])
      expect((await ask(f, 'p2', T0 + 100, limits, [req('h1', 1, 'k'), req('h2', 2, 'k')])).granted).toEqual([])
      // Asking again does not keep the dead slot alive: once it lapses, h1 runs again, ahead of h2.
      const lapsed = { staleBefore: T0 + 50 }
      expect((await ask(f, 'p2', T0 + 3000, limits, [req('h1', 1, 'k'), req('h2', 2, 'k')], lapsed)).granted).toEqual([
        'h1',
      ])
    })

    test('keeps the place of a repeated request (the since of its first registration)', async (f) => {
      const limits = { concurrency: 1 }
      expect((await ask(f, 'p1', T0, limits, [req('h0', 0)])).granted).toEqual(['h0'])
      expect((await ask(f, 'p1', T0, limits, [req('x', 10)])).granted).toEqual([])
      expect((await ask(f, 'p2', T0, limits, [req('y', 20)])).granted).toEqual([])
      await f.releaseActivity('act', ['h0'])
      expect((await ask(f, 'p2', T0 + 1, limits, [req('y', 20)])).granted).toEqual([])
      expect((await ask(f, 'p1', T0 + 2, limits, [req('x', 30)])).granted).toEqual(['x'])
    })

    test('frees a slot on release; releasing unknown holders changes nothing', async (f) => {
      const limits = { concurrency: 1 }
      expect((await ask(f, 'p1', T0, limits, [req('h1', 1)])).granted).toEqual(['h1'])
      await f.releaseActivity('act', ['nope'])
      await f.releaseActivity('act', [])
      await f.releaseActivity('elsewhere', ['h1'])
      expect((await ask(f, 'p1', T0 + 1, limits, [req('h2', 2)])).granted).toEqual([])
      await f.releaseActivity('act', ['h1'])
      expect((await ask(f, 'p1', T0 + 2, limits, [req('h2', 2)])).granted).toEqual(['h2'])
    })

    test('pauses and resumes activities, listed bytewise by activity', async (f) => {
      expect(await f.listActivityControls()).toEqual([])
      const paused = await f.controlActivity('b', { kind: 'pause' }, T0)
      expect(paused).toEqual({
        applied: true,
        control: {
          activity: 'b',
          paused: true,
          failures: 0,
          openUntil: null,
          probe: null,
          probeUntil: 0,
          updatedAt: T0,
        },
      })
      await f.controlActivity('a', { kind: 'pause' }, T0 + 1)
      await f.controlActivity('B', { kind: 'pause' }, T0 + 2)
      await f.controlActivity('a', { kind: 'resume' }, T0 + 3)
      const listed = await f.listActivityControls()
      expect(listed.map((c) => [c.activity, c.paused, c.updatedAt])).toEqual([
        ['B', true, T0 + 2],
        ['a', false, T0 + 3],
        ['b', true, T0],
      ])
    })

    test('opens the breaker after threshold failures, lets one probe through when due, and closes or reopens it', async (f) => {
      const control = (change: ControlChange, at: number) => f.controlActivity('api', change, at)
      const fail = (holder: string) => ({ kind: 'failure', holder, threshold: 3, cooldown: 1000 }) as const
      const probe = (holder: string, until: number) => ({ kind: 'probe', holder, until }) as const
      const stored = async () => (await f.listActivityControls()).find((c) => c.activity === 'api')

      await control(fail('h1'), T0)
      const second = await control(fail('h2'), T0 + 1)
      expect([second.control.failures, second.control.openUntil]).toEqual([2, null])
      const opened = await control(fail('h3'), T0 + 2)
      expect([opened.applied, opened.control.failures, opened.control.openUntil]).toEqual([true, 3, T0 + 1002])
      expect(await stored()).toEqual(opened.control)

      // Not due yet: refused, and nothing written.
      const early = await control(probe('h4', T0 + 1500), T0 + 500)
      expect([early.applied, early.control.probe]).toEqual([false, null])
      expect(await stored()).toEqual(opened.control)

      const first = await control(probe('h4', T0 + 1202), T0 + 1002)
      expect([first.applied, first.control.probe, first.control.probeUntil]).toEqual([true, 'h4', T0 + 1202])
      const busy = await control(probe('h5', T0 + 1300), T0 + 1100)
      expect([busy.applied, busy.control.probe]).toEqual([false, 'h4'])
      expect(await stored()).toEqual(first.control)
      const next = await control(probe('h5', T0 + 1400), T0 + 1202)
      expect([next.applied, next.control.probe]).toEqual([true, 'h5'])

      // The probe fails: open again for a cooldown.
      const reopened = await control(fail('h5'), T0 + 1250)
      expect([reopened.control.openUntil, reopened.control.probe, reopened.control.failures]).toEqual([
        T0 + 2250,
        null,
        4,
      ])
      expect((await control(probe('h6', T0 + 2400), T0 + 2250)).applied).toBe(true)
      const closed = await control({ kind: 'success', holder: 'h6' }, T0 + 2300)
      expect(closed.control).toEqual({
        activity: 'api',
        paused: false,
        failures: 0,
        openUntil: null,
        probe: null,
        probeUntil: 0,
        updatedAt: T0 + 2300,
      })
      expect(await stored()).toEqual(closed.control)

      // A refused change on an activity never written leaves no row.
      expect((await f.controlActivity('never', probe('h7', T0 + 1), T0)).applied).toBe(false)
      expect((await f.listActivityControls()).map((c) => c.activity)).toEqual(['api'])
    })

    test('keeps queue rows and controls across close and open', async (f, store) => {
      const limits = { concurrency: 1 }
      expect((await ask(f, 'p1', T0, limits, [req('h1', 1), req('h2', 2)])).granted).toEqual(['h1'])
      await f.controlActivity('act', { kind: 'pause' }, T0)
      await store.close()
      const g = await again(store)
      expect((await ask(g, 'p2', T0 + 10, limits, [req('h3', 3)])).granted).toEqual([])
      await g.releaseActivity('act', ['h1'])
      // h2, registered before the restart, is still ahead of h3.
      expect((await ask(g, 'p2', T0 + 20, limits, [req('h3', 3)])).granted).toEqual([])
      expect((await ask(g, 'p1', T0 + 30, limits, [req('h2', 2)])).granted).toEqual(['h2'])
      expect((await g.listActivityControls()).map((c) => [c.activity, c.paused])).toEqual([['act', true]])
    })

    test('never runs more than the concurrency across two handles admitting at once', async (first, store) => {
      const handles = [first, await again(store)]
      const limits = { concurrency: 3 }
      const owners = 3
      const perOwner = 4
      let running = 0
      let most = 0
      let granted = 0
      const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

      const worker = async (f: FlowStore, owner: string, index: number) => {
        // Holders of all owners interleave in the queue, so each owner waits for the others.
        const pending = new Map(
          Array.from({ length: perOwner }, (_, i) => {
            const holder = `${owner}-${i}`
            return [holder, req(holder, i * 100 + index)] as const
          }),
        )
        for (let round = 0; pending.size > 0; round++) {
          if (round > 5000) throw new Error(`${owner} was never admitted`)
          const result = await ask(f, owner, T0, limits, [...pending.values()], { activity: 'shared' })
          if (result.granted.length === 0) {
            await pause(0)
            continue
          }
          for (const holder of result.granted) pending.delete(holder)
          running += result.granted.length
          granted += result.granted.length
          most = Math.max(most, running)
          await pause(1 + (round % 3))
          // Counted as ended before the store hears of it: the count never runs ahead of the store's.
          running -= result.granted.length
          await f.releaseActivity('shared', result.granted)
        }
      }

      await Promise.all(
        handles.flatMap((f, h) => Array.from({ length: owners }, (_, o) => worker(f, `h${h}o${o}`, h * owners + o))),
      )
      expect(granted).toBe(handles.length * owners * perOwner)
      expect(most).toBeGreaterThan(0)
      expect(most).toBeLessThanOrEqual(3)
    })
  })
}
