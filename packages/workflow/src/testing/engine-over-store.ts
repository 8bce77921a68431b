/**
 * The second part of the store conformance suite: an engine driven over the store with a manual
 * clock (the order saga, timers and activities across a restart, retries, versioning).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { NonRetryableError } from '../activity-errors.js'
import { type ManualClock, manualClock } from '../clock.js'
import { createEngine } from '../engine.js'
import { WorkflowError } from '../errors.js'
import { defineMachine } from '../machine.js'
import type { EngineOptions } from '../options.js'
import type { Store } from '../store.js'
import type { Engine } from '../types.js'
import { order } from './order-machine.js'
import { type Suite, T0 } from './suite.js'

export function engineOverStoreTests(name: string, suite: Suite): void {
  const { hooks, reopen, open, engines } = suite

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
        pollInterval: 50,
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
      expect((await h.engine.list({ machine: 'ticket', version: 1 })).instances.map((i) => i.id)).toEqual(['t-1'])
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
      expect((await h.engine.list({ status: 'done' })).instances.map((i) => [i.id, i.state])).toEqual([
        ['l-2', 'cancelled'],
      ])
      expect((await h.engine.list({ state: 'created', machine: 'order' })).instances.map((i) => i.id)).toEqual([
        'l-1',
        'l-3',
      ])
    })
  })
}
