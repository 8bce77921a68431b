/**
 * The store conformance suite: every store runs these same tests, through its own hooks. The first
 * part talks to the Store interface directly (atomic commits, compare-and-set, event ids, claims and
 * leases, outbox); the second drives an engine over the store with a manual clock (the order saga,
 * timers and activities across a restart, retries, versioning).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  type Commit,
  createEngine,
  defineMachine,
  type Engine,
  type EngineOptions,
  type InstanceRecord,
  type ManualClock,
  manualClock,
  NonRetryableError,
  type Store,
  WorkflowError,
} from '../../src/index.js'
import { order } from '../fixtures/order.js'

export interface StoreSuiteHooks {
  /** A new, empty store, not opened. */
  create(): Store | Promise<Store>
  /** Another handle on the same data (a restarted process would open this). Default: the same object. */
  reopen?(store: Store): Store | Promise<Store>
  /** Called once after the suite (drop schemas, remove files). */
  cleanup?(): Promise<void>
}

const T0 = Date.UTC(2030, 0, 1)

function record(id: string, revision: number, patch: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    machine: 'm',
    version: 1,
    state: 'a',
    status: 'running',
    context: { n: revision },
    revision,
    createdAt: T0,
    updatedAt: T0 + revision,
    timers: [],
    tasks: [],
    ...patch,
  }
}

function commitOf(instance: InstanceRecord, expectedRevision: number, patch: Partial<Commit> = {}): Commit {
  return {
    instance,
    expectedRevision,
    history: [
      {
        instanceId: instance.id,
        seq: instance.revision,
        at: instance.updatedAt,
        kind: expectedRevision === 0 ? 'start' : 'event',
        event: { type: 'E', n: instance.revision },
        from: expectedRevision === 0 ? null : 'a',
        to: instance.state,
      },
    ],
    outbox: [],
    ...patch,
  }
}

const strip = (r: InstanceRecord | undefined) => {
  if (!r) return r
  const { owner: _owner, ...rest } = r as InstanceRecord & { owner?: unknown }
  return rest
}

export function storeConformance(name: string, hooks: StoreSuiteHooks): void {
  const reopen = hooks.reopen ?? ((store: Store) => store)
  const open: Store[] = []
  const engines: Engine[] = []

  const fresh = async (): Promise<Store> => {
    const store = await hooks.create()
    await store.open()
    open.push(store)
    return store
  }

  afterEach(async () => {
    for (const engine of engines.splice(0)) await engine.close().catch(() => undefined)
    for (const store of open.splice(0)) await store.close().catch(() => undefined)
  })
  afterAll(async () => {
    await hooks.cleanup?.()
  })

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

  describe(`${name} store: the engine over it`, () => {
    interface Harness {
      engine: Engine
      clock: ManualClock
      store: Store
      effects: Map<string, number>
      calls: { activity: string; key: string; attempt: number }[]
      published: { topic: string; data: unknown; options: unknown }[]
    }

    const control = {
      charge: (_input: unknown, _attempt: number): unknown => ({ chargeId: 'ch-1' }),
      reserve: (_input: unknown, _attempt: number): unknown => ({ reserved: true }),
    }

    const harness = async (extra: Partial<EngineOptions> = {}, reuse?: Partial<Harness>): Promise<Harness> => {
      const clock = reuse?.clock ?? manualClock(T0)
      const store = reuse?.store ? await reopen(reuse.store) : await hooks.create()
      const effects = reuse?.effects ?? new Map<string, number>()
      const calls = reuse?.calls ?? []
      const published = reuse?.published ?? []
      const once = (key: string) => effects.set(key, (effects.get(key) ?? 0) + 1)
      const engine = await createEngine({
        store,
        machines: [order],
        clock,
        pollMs: 50,
        closeTimeout: 50,
        broker: {
          publish: async (topic: string, data: unknown, options: unknown) => {
            published.push({ topic, data, options })
          },
          subscribe: async () => ({ close: async () => undefined }),
        },
        retry: { jitter: false, initialDelay: '1s', maxAttempts: 3 },
        activities: {
          chargeCard: async (input, ctx) => {
            calls.push({ activity: 'chargeCard', key: ctx.idempotencyKey, attempt: ctx.attempt })
            const out = await control.charge(input, ctx.attempt)
            once(ctx.idempotencyKey)
            return out
          },
          reserveStock: async (input, ctx) => {
            calls.push({ activity: 'reserveStock', key: ctx.idempotencyKey, attempt: ctx.attempt })
            const out = await control.reserve(input, ctx.attempt)
            once(ctx.idempotencyKey)
            return out
          },
          refund: async (_input, ctx) => {
            calls.push({ activity: 'refund', key: ctx.idempotencyKey, attempt: ctx.attempt })
            once(ctx.idempotencyKey)
            return { refundId: 're-1' }
          },
        },
        ...extra,
      })
      engines.push(engine)
      open.push(store)
      return { engine, clock, store, effects, calls, published }
    }

    afterEach(() => {
      control.charge = () => ({ chargeId: 'ch-1' })
      control.reserve = () => ({ reserved: true })
    })

    const input = { orderId: 'o-1', amount: 42 }

    it('runs the order to delivered: activities once each, outbox published, events idempotent', async () => {
      const h = await harness()
      const started = await h.engine.start(order, { id: 'o-1', input })
      expect(started).toMatchObject({ state: 'created', status: 'running', version: 1, revision: 1, context: input })
      const sent = await h.engine.send('o-1', { type: 'SUBMIT', id: 'web-1' })
      expect(sent.status).toBe('applied')
      const shipping = await h.engine.waitFor('o-1', (i) => i.state === 'shipping')
      expect(shipping.context).toEqual({ ...input, chargeId: 'ch-1' })
      expect(await h.engine.send('o-1', { type: 'SUBMIT', id: 'web-1' })).toMatchObject({
        status: 'duplicate',
        instance: { state: 'shipping' },
      })
      const delivered = await h.engine.send('o-1', { type: 'DELIVERED', id: 'carrier-evt-9' })
      expect(delivered).toMatchObject({ status: 'applied', instance: { state: 'delivered', status: 'done' } })
      expect(await h.engine.send('o-1', { type: 'DELIVERED', id: 'carrier-evt-9' })).toMatchObject({
        status: 'duplicate',
      })
      const history = await h.engine.history('o-1')
      expect(history.map((e) => [e.kind, e.from, e.to])).toEqual([
        ['start', null, 'created'],
        ['event', 'created', 'paymentPending'],
        ['activity.done', 'paymentPending', 'paid'],
        ['activity.done', 'paid', 'shipping'],
        ['event', 'shipping', 'delivered'],
      ])
      expect(history.every((e) => e.at instanceof Date)).toBe(true)
      expect([...h.effects.values()]).toEqual([1, 1])
      await expect.poll(() => h.published.length).toBe(1)
      expect(h.published[0]).toEqual({
        topic: 'orders.shipped',
        data: { orderId: 'o-1' },
        options: { id: 'o-1/4/1', key: 'o-1' },
      })
    })

    it('compensates: a failed stock reservation refunds the charge (saga), each step committed', async () => {
      control.reserve = () => {
        throw new NonRetryableError('out of stock')
      }
      const h = await harness()
      await h.engine.start(order, { id: 'o-2', input })
      await h.engine.send('o-2', { type: 'SUBMIT' })
      const done = await h.engine.waitFor('o-2', (i) => i.status === 'done')
      expect(done.state).toBe('cancelled')
      expect(done.context).toEqual({ ...input, chargeId: 'ch-1', refundId: 're-1', reason: 'out of stock' })
      expect((await h.engine.history('o-2')).map((e) => e.to)).toEqual([
        'created',
        'paymentPending',
        'paid',
        'refunding',
        'cancelled',
      ])
      expect(h.calls.filter((c) => c.activity === 'reserveStock')).toHaveLength(1)
    })

    it('fires an after timer at its deadline on the injected clock, not before', async () => {
      control.charge = () => new Promise(() => undefined)
      const h = await harness({ activityTimeout: '2h' })
      await h.engine.start(order, { id: 'o-3', input })
      await h.engine.send('o-3', { type: 'SUBMIT' })
      const pending = await h.engine.get('o-3')
      expect(pending.timers.map((t) => [t.delay, t.deadline.getTime()])).toEqual([['30m', T0 + 30 * 60_000]])
      await h.clock.advance(30 * 60_000 - 1)
      expect((await h.engine.get('o-3')).state).toBe('paymentPending')
      await h.clock.advance(1)
      const cancelled = await h.engine.waitFor('o-3', (i) => i.status === 'done')
      expect(cancelled).toMatchObject({ state: 'cancelled', context: { reason: 'payment timed out' } })
      const last = (await h.engine.history('o-3')).at(-1)
      expect(last).toMatchObject({
        kind: 'timer',
        event: { type: 'after', delay: '30m' },
        from: 'paymentPending',
        to: 'cancelled',
      })
      expect(last?.at.getTime()).toBe(T0 + 30 * 60_000)
    })

    it('re-arms timers from their absolute deadlines and re-runs uncommitted activities after a restart', async () => {
      control.charge = () => new Promise(() => undefined) // the process "dies" while charging
      const first = await harness({ activityTimeout: '2h' })
      await first.engine.start(order, { id: 'o-4', input })
      await first.engine.send('o-4', { type: 'SUBMIT' })
      await expect.poll(() => first.calls.length).toBe(1)
      await first.clock.advance(10 * 60_000)
      await first.engine.close()
      // Restart: 10 minutes later the charge works again; the timer still counts from the first entry.
      control.charge = (_input, attempt) => ({ chargeId: `ch-after-restart-${attempt}` })
      const second = await harness(
        { activityTimeout: '2h' },
        { clock: first.clock, store: first.store, effects: first.effects, calls: first.calls },
      )
      expect(second.engine.recovered.instances).toBeGreaterThanOrEqual(1)
      const paid = await second.engine.waitFor<{ chargeId?: string }>('o-4', (i) => i.state === 'shipping')
      expect(paid.context.chargeId).toBe('ch-after-restart-1')
      const charges = second.calls.filter((c) => c.activity === 'chargeCard')
      expect(charges).toHaveLength(2)
      expect(charges[0]?.key).toBe(charges[1]?.key)
      expect(second.effects.get(charges[0]?.key as string)).toBe(1)

      // And a timer across a restart: o-5 waits for its charge, the engine restarts, the deadline holds.
      control.charge = () => new Promise(() => undefined)
      await second.engine.start(order, { id: 'o-5', input })
      await second.engine.send('o-5', { type: 'SUBMIT' })
      const armedAt = second.clock.now()
      await second.clock.advance(20 * 60_000)
      await second.engine.close()
      const third = await harness(
        { activityTimeout: '2h' },
        { clock: second.clock, store: second.store, effects: second.effects, calls: second.calls },
      )
      await third.clock.advance(10 * 60_000 - 1)
      expect((await third.engine.get('o-5')).state).toBe('paymentPending')
      await third.clock.advance(1)
      const timedOut = await third.engine.waitFor('o-5', (i) => i.status === 'done')
      expect(timedOut.state).toBe('cancelled')
      expect((await third.engine.history('o-5')).at(-1)?.at.getTime()).toBe(armedAt + 30 * 60_000)
    })

    it('retries with backoff under one idempotency key, then takes onError', async () => {
      control.charge = (_input, attempt) => {
        throw Object.assign(new Error(`gateway down (attempt ${attempt})`), { code: 'EGATEWAY' })
      }
      const h = await harness()
      const failures: { attempt: number; willRetry: boolean }[] = []
      h.engine.events.on('activityFailed', (e) => failures.push({ attempt: e.attempt, willRetry: e.willRetry }))
      await h.engine.start(order, { id: 'o-6', input })
      await h.engine.send('o-6', { type: 'SUBMIT' })
      await expect.poll(() => h.calls.length).toBe(1)
      await expect.poll(async () => (await h.engine.get('o-6')).tasks[0]?.attempt).toBe(2)
      const waiting = await h.engine.get('o-6')
      expect(waiting.tasks[0]?.runAt.getTime()).toBe(h.clock.now() + 1000)
      expect(waiting.tasks[0]?.lastError).toMatchObject({ message: 'gateway down (attempt 1)', code: 'EGATEWAY' })
      await h.clock.advance(999)
      expect(h.calls).toHaveLength(1)
      await h.clock.advance(1)
      await expect.poll(() => h.calls.length).toBe(2)
      await expect.poll(async () => (await h.engine.get('o-6')).tasks[0]?.attempt).toBe(3)
      await h.clock.advance(2000)
      const done = await h.engine.waitFor('o-6', (i) => i.status === 'done')
      expect(done).toMatchObject({ state: 'cancelled', context: { reason: 'gateway down (attempt 3)' } })
      expect(h.calls.map((c) => c.attempt)).toEqual([1, 2, 3])
      expect(new Set(h.calls.map((c) => c.key)).size).toBe(1)
      expect(failures).toEqual([
        { attempt: 1, willRetry: true },
        { attempt: 2, willRetry: true },
        { attempt: 3, willRetry: false },
      ])
      const last = (await h.engine.history('o-6')).at(-1)
      expect(last?.event).toMatchObject({
        type: 'activity.error',
        activity: 'chargeCard',
        error: { attempts: 3, code: 'EGATEWAY' },
      })
    })

    it('times an attempt out (its signal aborts) and retries it', async () => {
      let aborted = 0
      control.charge = (_input, attempt) => (attempt === 1 ? new Promise(() => undefined) : { chargeId: 'ch-2' })
      const timed = await harness({
        activities: {
          chargeCard: {
            timeout: '5s',
            run: async (input: unknown, ctx: { attempt: number; signal: AbortSignal; idempotencyKey: string }) => {
              ctx.signal.addEventListener('abort', () => aborted++)
              timed.calls.push({ activity: 'chargeCard', key: ctx.idempotencyKey, attempt: ctx.attempt })
              return control.charge(input, ctx.attempt)
            },
          },
          reserveStock: async () => ({}),
          refund: async () => ({ refundId: 'r' }),
        },
      })
      await timed.engine.start(order, { id: 'o-7', input })
      await timed.engine.send('o-7', { type: 'SUBMIT' })
      await expect.poll(() => timed.calls.length).toBe(1)
      await timed.clock.advance(5000)
      await expect
        .poll(async () => (await timed.engine.get('o-7')).tasks[0]?.lastError?.name)
        .toBe('ActivityTimeoutError')
      expect(aborted).toBe(1)
      await timed.clock.advance(1000)
      const shipping = await timed.engine.waitFor<{ chargeId?: string }>('o-7', (i) => i.state === 'shipping')
      expect(shipping.context.chargeId).toBe('ch-2')
    })

    it('fails an instance whose activity fails with no onError, and retry() runs it again', async () => {
      control.reserve = () => {
        throw new NonRetryableError('warehouse offline')
      }
      const noRefund = defineMachine({
        id: 'order',
        version: 1,
        context: order.config.context,
        initial: 'paid',
        states: { paid: { invoke: { activity: 'reserveStock', onDone: 'shipped' } }, shipped: { type: 'final' } },
      })
      const h = await harness({ machines: [noRefund] })
      const failed: string[] = []
      h.engine.events.on('instanceFailed', (e) => failed.push(e.failure.message))
      await h.engine.start(noRefund, { id: 'o-8', input })
      const instance = await h.engine.waitFor('o-8', (i) => i.status === 'failed')
      expect(instance.failure).toMatchObject({
        activity: 'reserveStock',
        message: 'activity reserveStock failed: warehouse offline',
      })
      expect(failed).toEqual(['activity reserveStock failed: warehouse offline'])
      const retryError = await h.engine.retry('nope').catch((e: unknown) => e)
      expect(WorkflowError.is(retryError, 'WORKFLOW_UNKNOWN_INSTANCE')).toBe(true)
      control.reserve = () => ({ ok: true })
      const retried = await h.engine.retry('o-8')
      expect(retried.status).toBe('running')
      expect((await h.engine.waitFor('o-8', (i) => i.status === 'done')).state).toBe('shipped')
      const keys = h.calls.filter((c) => c.activity === 'reserveStock').map((c) => c.key)
      expect(keys).toHaveLength(2)
      expect(keys[0]).toBe(keys[1])
      expect((await h.engine.history('o-8')).map((e) => e.kind)).toEqual(['start', 'failed', 'retry', 'activity.done'])
      const notFailed = await h.engine.retry('o-8').catch((e: unknown) => e)
      expect(WorkflowError.is(notFailed, 'WORKFLOW_NOT_FAILED')).toBe(true)
    })

    it('rejects unaccepted events with a typed error, or records them as ignored', async () => {
      const h = await harness()
      await h.engine.start(order, { id: 'o-9', input })
      const error = await h.engine.send('o-9', { type: 'DELIVERED', id: 'x-1' }).catch((e: unknown) => e)
      expect(WorkflowError.is(error, 'WORKFLOW_EVENT_NOT_ACCEPTED')).toBe(true)
      expect((error as WorkflowError).message).toMatch(/state created does not accept DELIVERED/)
      expect((await h.engine.get('o-9')).revision).toBe(1)
      const ignored = await h.engine.send('o-9', { type: 'DELIVERED', id: 'x-2' }, { unhandledEvents: 'ignore' })
      expect(ignored).toMatchObject({ status: 'ignored', instance: { state: 'created', revision: 2 } })
      expect(await h.engine.send('o-9', { type: 'DELIVERED', id: 'x-2' }, { unhandledEvents: 'ignore' })).toMatchObject(
        { status: 'duplicate' },
      )
      expect((await h.engine.history('o-9')).at(-1)).toMatchObject({
        kind: 'ignored',
        from: 'created',
        to: 'created',
        event: { type: 'DELIVERED', id: 'x-2' },
      })
    })

    it('refuses bad input with typed errors and commits nothing', async () => {
      const h = await harness()
      const code = async (p: Promise<unknown>) =>
        (
          (await p.then(
            () => undefined,
            (e: unknown) => e,
          )) as WorkflowError | undefined
        )?.code
      expect(await code(h.engine.start('nope', { id: 'x' }))).toBe('WORKFLOW_UNKNOWN_MACHINE')
      expect(await code(h.engine.start(order, { id: 'x', input: { orderId: 'x', amount: -1 } }))).toBe(
        'WORKFLOW_INVALID_CONTEXT',
      )
      expect(await h.store.load('x')).toBeUndefined()
      await h.engine.start(order, { id: 'dup', input })
      expect(await code(h.engine.start(order, { id: 'dup', input }))).toBe('WORKFLOW_DUPLICATE_INSTANCE')
      expect(await code(h.engine.send('ghost', { type: 'SUBMIT' }))).toBe('WORKFLOW_UNKNOWN_INSTANCE')
      expect(await code(h.engine.get('ghost'))).toBe('WORKFLOW_UNKNOWN_INSTANCE')
      expect(await code(h.engine.history('ghost'))).toBe('WORKFLOW_UNKNOWN_INSTANCE')
      expect(await code(h.engine.send('dup', { type: '' }))).toBe('WORKFLOW_INVALID_EVENT')
      expect(await code(h.engine.start(order, { id: 'x', version: 9, input }))).toBe('WORKFLOW_UNKNOWN_VERSION')
      expect((await h.engine.history('dup')).length).toBe(1)
    })

    it('keeps instances on their version and migrates them with the hook', async () => {
      const v1 = defineMachine({
        id: 'ticket',
        version: 1,
        context: z.object({ title: z.string() }),
        initial: 'open',
        states: { open: { on: { CLOSE: 'closed' } }, closed: { type: 'final' } },
      })
      const v2 = defineMachine({
        id: 'ticket',
        version: 2,
        context: z.object({ title: z.string(), priority: z.enum(['low', 'high']) }),
        initial: 'triage',
        states: {
          triage: { on: { ACCEPT: 'inProgress' } },
          inProgress: { on: { CLOSE: 'closed' }, after: { '1h': 'closed' } },
          closed: { type: 'final' },
        },
        migrations: {
          1: ({ state, context }) => ({
            state: state === 'open' ? 'inProgress' : state,
            context: { ...(context as { title: string }), priority: 'low' as const },
          }),
        },
      })
      const h = await harness({ machines: [v1, v2] })
      const old = await h.engine.start('ticket', { id: 't-1', version: 1, input: { title: 'a' } })
      const current = await h.engine.start('ticket', { id: 't-2', input: { title: 'b', priority: 'high' } })
      expect([old.version, current.version, current.state]).toEqual([1, 2, 'triage'])
      expect((await h.engine.send('t-1', { type: 'ACCEPT' }).catch((e: unknown) => e)) instanceof WorkflowError).toBe(
        true,
      )
      expect((await h.engine.list({ machine: 'ticket', version: 1 })).map((i) => i.id)).toEqual(['t-1'])
      const migrated = await h.engine.migrate('t-1')
      expect(migrated).toMatchObject({ version: 2, state: 'inProgress', context: { title: 'a', priority: 'low' } })
      expect(migrated.timers.map((t) => t.delay)).toEqual(['1h'])
      expect((await h.engine.history('t-1')).at(-1)).toMatchObject({
        kind: 'migrate',
        from: 'open',
        to: 'inProgress',
        event: { from: 1, to: 2 },
      })
      await h.clock.advance(3_600_000)
      expect((await h.engine.waitFor('t-1', (i) => i.status === 'done')).state).toBe('closed')
      const backwards = await h.engine.migrate('t-2', { to: 1 }).catch((e: unknown) => e)
      expect(WorkflowError.is(backwards, 'WORKFLOW_MIGRATION_FAILED')).toBe(true)
    })

    it('lists and filters instances through the engine', async () => {
      const h = await harness()
      for (const id of ['l-1', 'l-2', 'l-3']) await h.engine.start(order, { id, input: { orderId: id, amount: 1 } })
      await h.engine.send('l-2', { type: 'CANCEL' })
      expect((await h.engine.list({ status: 'done' })).map((i) => [i.id, i.state])).toEqual([['l-2', 'cancelled']])
      expect((await h.engine.list({ state: 'created', machine: 'order' })).map((i) => i.id)).toEqual(['l-1', 'l-3'])
    })
  })
}
