/**
 * The first part of the store conformance suite: the Store interface called directly (atomic
 * commits, compare-and-set, event ids, claims and leases, the outbox).
 */
import { describe, expect, it } from 'vitest'
import { WorkflowError } from '../errors.js'
import type { InstanceRecord, Store } from '../store.js'
import { commitOf, record, type Suite, strip, T0 } from './suite.js'

export function storeContractTests(name: string, suite: Suite): void {
  const { reopen, fresh, open } = suite

  describe(`${name} store: the Store contract`, () => {
    it('creates an instance once: a second create of the id is refused as exists', async () => {
      const store = await fresh()
      expect(await store.commit(commitOf(record('i1', 1), 0))).toEqual({ status: 'committed' })
      expect(await store.commit(commitOf(record('i1', 1, { state: 'other' }), 0))).toEqual({ status: 'exists' })
      expect(strip(await store.load('i1'))).toEqual(record('i1', 1))
      expect(await store.load('nope')).toBeUndefined()
    })

    it('commits compare-and-set on the revision: a stale commit is a conflict and writes nothing', async () => {
      const store = await fresh()
      await store.commit(commitOf(record('i1', 1), 0))
      expect(await store.commit(commitOf(record('i1', 2, { state: 'b' }), 1))).toEqual({ status: 'committed' })
      expect(await store.commit(commitOf(record('i1', 2, { state: 'c' }), 1))).toEqual({ status: 'conflict' })
      expect(await store.commit(commitOf(record('missing', 2), 1))).toEqual({ status: 'conflict' })
      const loaded = await store.load('i1')
      expect(loaded?.state).toBe('b')
      expect(loaded?.revision).toBe(2)
      expect((await store.history('i1')).map((h) => h.seq)).toEqual([1, 2])
    })

    it('records event ids: a repeated id is a duplicate and changes nothing', async () => {
      const store = await fresh()
      await store.commit(commitOf(record('i1', 1), 0))
      expect(await store.commit(commitOf(record('i1', 2), 1, { eventId: 'e-1' }))).toEqual({ status: 'committed' })
      expect(await store.commit(commitOf(record('i1', 3), 2, { eventId: 'e-1' }))).toEqual({ status: 'duplicate' })
      expect(await store.hasEvent('i1', 'e-1')).toBe(true)
      expect(await store.hasEvent('i1', 'e-2')).toBe(false)
      expect(await store.hasEvent('i2', 'e-1')).toBe(false)
      expect((await store.load('i1'))?.revision).toBe(2)
      // Event ids are per instance.
      await store.commit(commitOf(record('i2', 1), 0))
      expect(await store.commit(commitOf(record('i2', 2), 1, { eventId: 'e-1' }))).toEqual({ status: 'committed' })
    })

    it('keeps the history in order with its events as JSON', async () => {
      const store = await fresh()
      await store.commit(commitOf(record('i1', 1), 0))
      await store.commit(commitOf(record('i1', 2, { state: 'b' }), 1))
      const history = await store.history('i1')
      expect(history).toEqual([
        { instanceId: 'i1', seq: 1, at: T0 + 1, kind: 'start', event: { type: 'E', n: 1 }, from: null, to: 'a' },
        { instanceId: 'i1', seq: 2, at: T0 + 2, kind: 'event', event: { type: 'E', n: 2 }, from: 'a', to: 'b' },
      ])
      expect(await store.history('none')).toEqual([])
    })

    it('lists by machine, version, state and status, ordered by id, with paging', async () => {
      const store = await fresh()
      await store.commit(commitOf(record('b', 1, { machine: 'm', state: 'x' }), 0))
      await store.commit(commitOf(record('a', 1, { machine: 'm', state: 'y', status: 'done' }), 0))
      await store.commit(commitOf(record('c', 1, { machine: 'n', state: 'x', version: 2 }), 0))
      const ids = async (filter: Parameters<Store['list']>[0]) => (await store.list(filter)).map((r) => r.id)
      expect(await ids({})).toEqual(['a', 'b', 'c'])
      expect(await ids({ machine: 'm' })).toEqual(['a', 'b'])
      expect(await ids({ state: 'x' })).toEqual(['b', 'c'])
      expect(await ids({ status: 'done' })).toEqual(['a'])
      expect(await ids({ version: 2 })).toEqual(['c'])
      expect(await ids({ limit: 2 })).toEqual(['a', 'b'])
      expect(await ids({ after: 'a', limit: 1 })).toEqual(['b'])
    })

    it('keeps the parent link of a child, a spawn task and the cancelled status through commit, load, list and a restart', async () => {
      const store = await fresh()
      const child = { id: 'p-1/wait/2', machine: 'child', version: 3, onParentExit: 'cancel' as const }
      const task = {
        id: '2',
        activity: 'spawn child',
        input: { n: 1 },
        key: 'p-1/wait/2',
        attempt: 1,
        runAt: T0,
        child,
      }
      await store.commit(commitOf(record('p-1', 1, { tasks: [task] }), 0))
      await store.commit(commitOf(record('p-1/wait/2', 1, { parent: { id: 'p-1', taskId: '2' } }), 0))
      await store.commit(commitOf(record('x', 1, { status: 'cancelled' }), 0))
      const again = await reopen(store)
      if (again !== store) {
        open.push(again)
        await again.open()
      }
      expect((await again.load('p-1'))?.tasks[0]?.child).toEqual(child)
      expect((await again.load('p-1/wait/2'))?.parent).toEqual({ id: 'p-1', taskId: '2' })
      expect((await again.list({ status: 'cancelled' })).map((r) => r.id)).toEqual(['x'])
    })

    it('orders and pages ids bytewise, whatever the database collation: every id once', async () => {
      const store = await fresh()
      const all = ['b', 'B', 'a-2', 'a_1', 'a1', 'Z', '\u00e4', 'order/10', 'order/9', 'order-1']
      for (const id of all) await store.commit(commitOf(record(id, 1), 0))
      const bytewise = [...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
      expect((await store.list({})).map((r) => r.id)).toEqual(bytewise)
      const paged: string[] = []
      for (let after: string | undefined; ; ) {
        const page = await store.list({ limit: 3, after })
        paged.push(...page.map((r) => r.id))
        if (page.length < 3) break
        after = page.at(-1)?.id
      }
      expect(paged).toEqual(bytewise)
    })

    it('counts instances per machine, version, state and status, filtered (when the store can)', async (context) => {
      const store = await fresh()
      if (!store.countInstances) return context.skip('this store has no countInstances: readers page through list')
      await store.commit(commitOf(record('a', 1, { machine: 'm', state: 'x' }), 0))
      await store.commit(commitOf(record('b', 1, { machine: 'm', state: 'x' }), 0))
      await store.commit(commitOf(record('c', 1, { machine: 'm', state: 'y', status: 'done' }), 0))
      await store.commit(commitOf(record('d', 1, { machine: 'n', state: 'x', version: 2, status: 'failed' }), 0))
      const counts = async (filter: Parameters<NonNullable<Store['countInstances']>>[0]) =>
        (await store.countInstances?.(filter))
          ?.map((c) => `${c.machine} v${c.version} ${c.state} ${c.status} ${c.count}`)
          .sort()
      expect(await counts({})).toEqual(['m v1 x running 2', 'm v1 y done 1', 'n v2 x failed 1'])
      expect(await counts({ machine: 'm', status: 'running' })).toEqual(['m v1 x running 2'])
      expect(await counts({ state: 'x', version: 2 })).toEqual(['n v2 x failed 1'])
      expect(await counts({ machine: 'none' })).toEqual([])
    })

    it('claims due work once, honours live leases, takes over expired ones', async () => {
      const store = await fresh()
      const due = (id: string, at: number) => record(id, 1, { timers: [{ id: 't', delay: '1s', deadline: at }] })
      await store.commit(commitOf(due('soon', T0 + 1000), 0, { owner: null }))
      await store.commit(commitOf(due('later', T0 + 60_000), 0, { owner: null }))
      await store.commit(commitOf(record('idle', 1), 0, { owner: null }))
      await store.commit(
        commitOf(record('done', 1, { status: 'done', timers: [{ id: 't', delay: '1s', deadline: T0 }] }), 0, {
          owner: null,
        }),
      )
      const claim = (owner: string, now: number, extra: Partial<Parameters<Store['claim']>[0]> = {}) =>
        store.claim({ owner, now, dueBefore: now + 1000, limit: 100, includeOwn: false, takeover: false, ...extra })
      await store.heartbeat('A', T0 + 30_000)
      await store.heartbeat('B', T0 + 90_000)
      expect((await claim('A', T0)).map((r) => r.id)).toEqual(['soon'])
      // A holds it and is alive: B gets nothing, A only with includeOwn.
      expect(await claim('B', T0 + 5000)).toEqual([])
      expect(await claim('A', T0 + 5000)).toEqual([])
      expect((await claim('A', T0 + 5000, { includeOwn: true })).map((r) => r.id)).toEqual(['soon'])
      // A's lease expires: B takes it over.
      expect((await claim('B', T0 + 31_000)).map((r) => r.id)).toEqual(['soon'])
      expect(await claim('A', T0 + 31_000)).toEqual([])
      // Far-off work is claimed when it comes due (or with everything due before a far time).
      expect((await claim('A', T0 + 59_500)).map((r) => r.id)).toEqual(['later'])
      // Takeover ignores leases.
      expect(
        (await claim('C', T0, { takeover: true, dueBefore: Number.MAX_SAFE_INTEGER })).map((r) => r.id).sort(),
      ).toEqual(['later', 'soon'])
      expect(((await store.load('soon')) as InstanceRecord & { owner?: string }).owner).toBe('C')
    })

    it('pages claims by id when they may return rows the owner already holds', async () => {
      const store = await fresh()
      for (const id of ['p3', 'p1', 'p2', 'p5', 'p4'])
        await store.commit(
          commitOf(
            record(id, 1, { tasks: [{ id: '1', activity: 'x', input: null, key: id, attempt: 1, runAt: T0 }] }),
            0,
            { owner: 'A' },
          ),
        )
      const page = (afterId: string) =>
        store.claim({
          owner: 'A',
          now: T0,
          dueBefore: Number.MAX_SAFE_INTEGER,
          limit: 2,
          includeOwn: true,
          takeover: true,
          afterId,
        })
      expect((await page('')).map((r) => r.id)).toEqual(['p1', 'p2'])
      expect((await page('p2')).map((r) => r.id)).toEqual(['p3', 'p4'])
      expect((await page('p4')).map((r) => r.id)).toEqual(['p5'])
      expect(await page('p5')).toEqual([])
    })

    it('gives a lease up with heartbeat(owner, 0): others claim at once', async () => {
      const store = await fresh()
      await store.commit(
        commitOf(
          record('i', 1, { tasks: [{ id: '1', activity: 'x', input: null, key: 'k', attempt: 1, runAt: T0 }] }),
          0,
          { owner: 'A' },
        ),
      )
      await store.heartbeat('A', T0 + 60_000)
      const claim = () =>
        store.claim({ owner: 'B', now: T0, dueBefore: T0 + 1, limit: 10, includeOwn: false, takeover: false })
      expect(await claim()).toEqual([])
      await store.heartbeat('A', 0)
      expect((await claim()).map((r) => r.id)).toEqual(['i'])
    })

    it('keeps the owner on a commit that does not set it, and sets it when told', async () => {
      const store = await fresh()
      const withOwner = async () => ((await store.load('i')) as InstanceRecord & { owner?: string | null }).owner
      await store.commit(commitOf(record('i', 1), 0, { owner: 'A' }))
      await store.commit(commitOf(record('i', 2), 1))
      expect(await withOwner()).toBe('A')
      await store.commit(commitOf(record('i', 3), 2, { owner: null }))
      expect(await withOwner()).toBeNull()
    })

    it('holds outbox rows for their committer, then hands them out in order, once per hold', async () => {
      const store = await fresh()
      const message = (n: number) => ({
        id: `i/2/${n}`,
        instanceId: 'i',
        topic: 't',
        data: { n },
        key: n === 1 ? 'k' : undefined,
        headers: n === 1 ? { h: 'v' } : undefined,
        createdAt: T0,
      })
      await store.commit(commitOf(record('i', 1), 0))
      await store.commit(
        commitOf(record('i', 2), 1, { outbox: [message(1), message(2)], outboxHoldUntil: T0 + 10_000 }),
      )
      expect(await store.claimOutbox({ now: T0 + 5000, limit: 10, holdUntil: T0 + 20_000 })).toEqual([])
      const first = await store.claimOutbox({ now: T0 + 10_000, limit: 10, holdUntil: T0 + 20_000 })
      expect(first.map((m) => [m.id, m.data, m.key, m.headers])).toEqual([
        ['i/2/1', { n: 1 }, 'k', { h: 'v' }],
        ['i/2/2', { n: 2 }, undefined, undefined],
      ])
      expect(await store.claimOutbox({ now: T0 + 15_000, limit: 10, holdUntil: T0 + 30_000 })).toEqual([])
      await store.ackOutbox(['i/2/1'])
      expect(
        (await store.claimOutbox({ now: T0 + 20_000, limit: 10, holdUntil: T0 + 30_000 })).map((m) => m.id),
      ).toEqual(['i/2/2'])
      await store.ackOutbox(['i/2/2'])
      expect(await store.claimOutbox({ now: T0 + 99_000, limit: 10, holdUntil: T0 + 100_000 })).toEqual([])
    })

    it('applies concurrent commits (grouped) each on its own: creates, updates, conflicts, duplicates, awkward text', async () => {
      const store = await fresh()
      // Text a batch encoding could get wrong: quotes, backslashes, commas, braces, non-ASCII, JSON-looking.
      const odd = (n: number) => `o"d,d\\{${n}} é ✓ 𝄞 [null] 'x'`
      const ids = Array.from({ length: 40 }, (_, n) => `${odd(n)}#${n}`)
      await Promise.all(ids.map((id) => store.commit(commitOf(record(id, 1, { context: { s: odd(0) } }), 0))))
      await store.commit(commitOf(record(ids[0] as string, 2), 1, { eventId: `e"${odd(1)}` }))
      const results = await Promise.all(
        ids.map((id, n) => {
          if (n === 0) return store.commit(commitOf(record(id, 3), 2, { eventId: `e"${odd(1)}` }))
          if (n % 5 === 1) return store.commit(commitOf(record(id, 3), 2)) // stale revision
          const message = {
            id: `${id}/2`,
            instanceId: id,
            topic: odd(n),
            data: n % 2 === 0 ? null : { text: odd(n), list: [1, 'two', null] },
            key: odd(n),
            headers: { h: odd(n) },
            createdAt: T0,
          }
          return store.commit(
            commitOf(record(id, 2, { state: odd(n), context: { s: odd(n) } }), 1, {
              eventId: `ev-${n}`,
              outbox: [message],
              outboxHoldUntil: T0,
            }),
          )
        }),
      )
      ids.forEach((id, n) => {
        const expected = n === 0 ? 'duplicate' : n % 5 === 1 ? 'conflict' : 'committed'
        expect({ id, status: results[n]?.status }).toEqual({ id, status: expected })
      })
      for (const [n, id] of ids.entries()) {
        if (n === 0 || n % 5 === 1) continue
        const loaded = await store.load(id)
        expect(loaded?.state).toBe(odd(n))
        expect(loaded?.context).toEqual({ s: odd(n) })
        expect((await store.history(id)).map((h) => [h.seq, h.to])).toEqual([
          [1, 'a'],
          [2, odd(n)],
        ])
        expect(await store.hasEvent(id, `ev-${n}`)).toBe(true)
      }
      expect(await store.hasEvent(ids[1] as string, 'ev-1')).toBe(false)
      const messages = await store.claimOutbox({ now: T0 + 1, limit: 100, holdUntil: T0 + 10_000 })
      const committed = ids.filter((_, n) => n !== 0 && n % 5 !== 1)
      expect(messages.map((m) => m.instanceId).sort()).toEqual([...committed].sort())
      for (const m of messages) {
        const n = ids.indexOf(m.instanceId)
        expect([m.topic, m.key, m.headers, m.data]).toEqual([
          odd(n),
          odd(n),
          { h: odd(n) },
          n % 2 === 0 ? null : { text: odd(n), list: [1, 'two', null] },
        ])
      }
    })

    it('keeps the trace context of timers and tasks through commit, load, list, claim and a restart', async () => {
      const store = await fresh()
      const trace = {
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=opaque',
      }
      const instance = record('i', 1, {
        timers: [
          { id: '1:30m', delay: '30m', deadline: T0 + 1000, trace },
          { id: '1:1h', delay: '1h', deadline: T0 + 3_600_000 },
        ],
        tasks: [{ id: '1', activity: 'x', input: { n: 1 }, key: 'i/a/1', attempt: 1, runAt: T0, trace }],
      })
      await store.commit(commitOf(instance, 0, { owner: null }))
      const loaded = strip(await store.load('i'))
      expect(loaded).toEqual(instance)
      expect(loaded?.timers.map((t) => t.trace)).toEqual([trace, undefined])
      expect(loaded?.tasks[0]?.trace).toEqual(trace)
      expect((await store.list({}))[0]?.tasks[0]?.trace).toEqual(trace)
      const [claimed] = await store.claim({
        owner: 'A',
        now: T0,
        dueBefore: T0 + 1,
        limit: 10,
        includeOwn: false,
        takeover: false,
      })
      expect(claimed?.timers[0]?.trace).toEqual(trace)
      expect(claimed?.tasks[0]?.trace).toEqual(trace)
      // A later commit that keeps the work keeps its trace.
      const next = record('i', 2, { timers: instance.timers, tasks: instance.tasks })
      await store.commit(commitOf(next, 1))
      await store.close()
      const again = await reopen(store)
      await again.open()
      open.push(again)
      const reloaded = strip(await again.load('i'))
      expect(reloaded?.timers[0]?.trace).toEqual(trace)
      expect(reloaded?.tasks[0]?.trace).toEqual(trace)
      expect(reloaded?.timers[1]).not.toHaveProperty('trace')
    })

    it('rejects a commit that cannot be serialized, alone, writing nothing', async () => {
      const store = await fresh()
      const results = await Promise.allSettled([
        store.commit(commitOf(record('ok', 1), 0)),
        store.commit(commitOf(record('bad', 1, { context: { n: 1n } }), 0)),
      ])
      expect(results[0]).toEqual({ status: 'fulfilled', value: { status: 'committed' } })
      expect(results[1]?.status).toBe('rejected')
      expect(WorkflowError.is((results[1] as PromiseRejectedResult).reason, 'WORKFLOW_INVALID_CONTEXT')).toBe(true)
      expect(await store.load('bad')).toBeUndefined()
    })

    it('applies many concurrent commits (grouped), each on its own: one conflict fails only itself', async () => {
      const store = await fresh()
      await Promise.all(Array.from({ length: 200 }, (_, i) => store.commit(commitOf(record(`c${i}`, 1), 0))))
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.commit(commitOf(record(`c${i}`, i === 7 ? 6 : 2, { state: 'b' }), i === 7 ? 5 : 1)),
        ),
      )
      expect(results.filter((r) => r.status === 'committed')).toHaveLength(199)
      expect(results[7]).toEqual({ status: 'conflict' })
      expect((await store.list({ state: 'b', limit: 1000 })).length).toBe(199)
      expect((await store.load('c7'))?.state).toBe('a')
    })

    it('sees committed data through a new handle (a restarted process)', async () => {
      const store = await fresh()
      await store.commit(commitOf(record('i', 1), 0))
      await store.commit(commitOf(record('i', 2, { state: 'b' }), 1, { eventId: 'e' }))
      await store.close()
      const again = await reopen(store)
      await again.open()
      open.push(again)
      expect((await again.load('i'))?.state).toBe('b')
      expect(await again.hasEvent('i', 'e')).toBe(true)
      expect((await again.history('i')).length).toBe(2)
    })

    it('fails with WORKFLOW_STORE_UNAVAILABLE when closed', async () => {
      const store = await fresh()
      await store.close()
      const error = await store.load('x').catch((e: unknown) => e)
      expect(WorkflowError.is(error, 'WORKFLOW_STORE_UNAVAILABLE')).toBe(true)
      const commitError = await store.commit(commitOf(record('x', 1), 0)).catch((e: unknown) => e)
      expect(WorkflowError.is(commitError, 'WORKFLOW_STORE_UNAVAILABLE')).toBe(true)
    })
  })
}
