/**
 * Trace-context propagation: a trace active when `start`/`send` commits continues into the
 * activities, timers and outbox messages the transition causes, and on into the transitions those
 * cause, restarts included. Registered here as an app would without an SDK: the AsyncLocalStorage
 * context manager and the W3C propagator (the spans are then non-recording and keep the trace id).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBroker } from '@backplane/messaging'
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanStatus,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createEngine,
  defineMachine,
  type EngineOptions,
  type ManualClock,
  manualClock,
  memoryStore,
  NonRetryableError,
} from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const OTHER_TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const spanContextOf = (traceId: string, spanId = randomBytes(8).toString('hex')): SpanContext => ({
  traceId,
  spanId,
  traceFlags: 1,
})
/** The context of an incoming HTTP request's span. */
const request = trace.setSpanContext(ROOT_CONTEXT, spanContextOf(TRACE_ID, '00f067aa0ba902b7'))
/** Some unrelated trace active where the engine is created or the clock moved: it must not leak in. */
const unrelated = trace.setSpanContext(ROOT_CONTEXT, spanContextOf(OTHER_TRACE_ID))
const traceIdOf = (traceparent: string | undefined) => traceparent?.split('-')[1]
const activeTraceId = () => trace.getSpanContext(context.active())?.traceId

const Flow = z.object({ id: z.string() })
const flow = defineMachine({
  id: 'flow',
  version: 1,
  context: Flow,
  initial: 'idle',
  states: {
    idle: {
      on: {
        GO: { target: 'charging', emit: (c) => ({ topic: 'flow.started', data: { id: c.id } }) },
        WAIT: 'waiting',
        PING: { emit: (c, e) => ({ topic: 'flow.ping', data: { id: c.id, n: (e as { n?: unknown }).n } }) },
      },
    },
    charging: {
      invoke: {
        activity: 'charge',
        onDone: { target: 'charged', emit: (c) => ({ topic: 'flow.charged', data: { id: c.id } }) },
        onError: { target: 'declined', emit: (c) => ({ topic: 'flow.declined', data: { id: c.id } }) },
      },
    },
    charged: {
      invoke: {
        activity: 'ship',
        onDone: { target: 'done', emit: (c) => ({ topic: 'flow.shipped', data: { id: c.id } }) },
      },
    },
    waiting: {
      on: { PING: { emit: (c, e) => ({ topic: 'flow.ping', data: { id: c.id, n: (e as { n?: unknown }).n } }) } },
      after: { '5m': { target: 'expired', emit: (c) => ({ topic: 'flow.expired', data: { id: c.id } }) } },
    },
    done: { type: 'final' },
    declined: { type: 'final' },
    expired: { type: 'final' },
  },
})
const TOPICS = ['flow.started', 'flow.ping', 'flow.charged', 'flow.declined', 'flow.shipped', 'flow.expired']

interface Seen {
  topic: string
  id: string
  n: unknown
  traceparent: string | undefined
  /** The trace id active in the subscriber (its consumer span continues the message's trace). */
  active: string | undefined
}
interface ActivityCall {
  activity: string
  instance: string
  traceId: string | undefined
}

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined)
})

beforeAll(() => {
  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true)
  expect(propagation.setGlobalPropagator(new W3CTraceContextPropagator())).toBe(true)
})
afterAll(() => {
  propagation.disable()
  context.disable()
})

async function setup(options: Partial<EngineOptions> = {}, clock: ManualClock = manualClock()) {
  const broker = await createBroker(`memory://trace-${randomBytes(6).toString('hex')}`)
  closers.push(() => broker.close())
  const seen: Seen[] = []
  for (const topic of TOPICS) {
    await broker.subscribe(
      topic,
      async (m) =>
        void seen.push({
          topic: m.topic,
          id: (m.data as { id: string }).id,
          n: (m.data as { n?: unknown }).n,
          traceparent: m.headers.traceparent,
          active: activeTraceId(),
        }),
      { from: 'earliest' },
    )
  }
  const calls: ActivityCall[] = []
  const record = (activity: string) => async (_input: unknown, ctx: { instanceId: string }) => {
    calls.push({ activity, instance: ctx.instanceId, traceId: activeTraceId() })
    return { ok: true }
  }
  const engine = await createEngine({
    store: memoryStore(),
    machines: [flow],
    activities: { charge: record('charge'), ship: record('ship') },
    broker,
    clock,
    pollInterval: 50,
    ...options,
  })
  closers.push(() => engine.close())
  /** The message of `topic` for instance `id` (and `n`), once it arrived. */
  const message = async (topic: string, id: string, n?: number): Promise<Seen> => {
    const match = (s: Seen) => s.topic === topic && s.id === id && (n === undefined || s.n === n)
    await expect.poll(() => seen.some(match)).toBe(true)
    return seen.find(match) as Seen
  }
  return { broker, engine, clock, seen, calls, message }
}

describe('trace context through the engine', () => {
  it('runs the activity of the state entered in the trace of the request that sent the event (a)', async () => {
    const { engine, calls } = await setup()
    await context.with(request, () => engine.start(flow, { id: 'a-1', input: { id: 'a-1' } }))
    await context.with(request, () => engine.send('a-1', { type: 'GO' }))
    await engine.waitFor('a-1', (i) => i.status === 'done')
    expect(calls.filter((c) => c.instance === 'a-1')).toEqual([
      { activity: 'charge', instance: 'a-1', traceId: TRACE_ID },
      { activity: 'ship', instance: 'a-1', traceId: TRACE_ID },
    ])
  })

  it('publishes the outbox message of a transition with a traceparent of the request trace (b)', async () => {
    const { engine, message } = await setup()
    await engine.start(flow, { id: 'b-1', input: { id: 'b-1' } })
    await context.with(request, () => engine.send('b-1', { type: 'GO' }))
    const started = await message('flow.started', 'b-1')
    expect(traceIdOf(started.traceparent)).toBe(TRACE_ID)
    expect(started.active).toBe(TRACE_ID)
  })

  it('carries the trace from activity.done into the next transition’s outbox message (c)', async () => {
    const { engine, message } = await setup()
    await engine.start(flow, { id: 'c-1', input: { id: 'c-1' } })
    await context.with(request, () => engine.send('c-1', { type: 'GO' }))
    expect(traceIdOf((await message('flow.charged', 'c-1')).traceparent)).toBe(TRACE_ID)
    // And once more: the second activity's result, committed from the second activity's context.
    expect(traceIdOf((await message('flow.shipped', 'c-1')).traceparent)).toBe(TRACE_ID)
  })

  it('fires a timer armed in the traced transition in that trace, whatever is active when it fires (d)', async () => {
    const { engine, clock, message, seen } = await setup()
    await engine.start(flow, { id: 'd-1', input: { id: 'd-1' } })
    await context.with(request, () => engine.send('d-1', { type: 'WAIT' }))
    await context.with(unrelated, () => clock.advance(5 * 60_000))
    const expired = await message('flow.expired', 'd-1')
    expect(traceIdOf(expired.traceparent)).toBe(TRACE_ID)
    expect(expired.active).toBe(TRACE_ID)
    expect(seen.some((s) => traceIdOf(s.traceparent) === OTHER_TRACE_ID)).toBe(false)
  })

  it('keeps a pending timer’s trace in the SQLite file across a restart (e)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-trace-'))
    closers.push(async () => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'workflows.db')
    const clock = manualClock()
    const first = await setup({ store: sqliteStore(path) }, clock)
    await context.with(request, () => first.engine.start(flow, { id: 'e-1', input: { id: 'e-1' } }))
    await context.with(request, () => first.engine.send('e-1', { type: 'WAIT' }))
    await first.engine.close()
    // What the file holds: the timer with the request's trace context.
    const raw = sqliteStore(path)
    await raw.open()
    const stored = await raw.load('e-1')
    await raw.close()
    expect(stored?.timers).toHaveLength(1)
    expect(traceIdOf(stored?.timers[0]?.trace?.traceparent)).toBe(TRACE_ID)
    // A new process: created and driven from unrelated contexts.
    const second = await context.with(unrelated, () => setup({ store: sqliteStore(path) }, clock))
    expect(second.engine.recovered.instances).toBe(1)
    await context.with(unrelated, () => clock.advance(5 * 60_000))
    const expired = await second.message('flow.expired', 'e-1')
    expect(traceIdOf(expired.traceparent)).toBe(TRACE_ID)
    expect(expired.active).toBe(TRACE_ID)
  })

  it('leaves the timers a transition keeps in the trace that armed them (or in none)', async () => {
    const store = memoryStore()
    const { engine, clock, message } = await setup({ store })
    await context.with(request, () => engine.start(flow, { id: 'k-1', input: { id: 'k-1' } }))
    await context.with(request, () => engine.send('k-1', { type: 'WAIT' }))
    await engine.start(flow, { id: 'k-2', input: { id: 'k-2' } })
    await engine.send('k-2', { type: 'WAIT' })
    // Internal transitions in other traces: the timers stay, with the trace they had.
    await context.with(unrelated, () => engine.send('k-1', { type: 'PING', n: 1 }))
    await context.with(request, () => engine.send('k-2', { type: 'PING', n: 1 }))
    expect(traceIdOf((await message('flow.ping', 'k-1', 1)).traceparent)).toBe(OTHER_TRACE_ID)
    expect(traceIdOf((await message('flow.ping', 'k-2', 1)).traceparent)).toBe(TRACE_ID)
    // As stored (what a restarted engine arms them from).
    expect(traceIdOf((await store.load('k-1'))?.timers[0]?.trace?.traceparent)).toBe(TRACE_ID)
    expect((await store.load('k-2'))?.timers[0]).not.toHaveProperty('trace')
    await clock.advance(5 * 60_000)
    expect(traceIdOf((await message('flow.expired', 'k-1')).traceparent)).toBe(TRACE_ID)
    expect((await message('flow.expired', 'k-2')).traceparent).toBeUndefined()
  })

  it('stores no trace and publishes none when no context is active (f)', async () => {
    const store = memoryStore()
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const calls: ActivityCall[] = []
    const { engine, message, clock } = await setup({
      store,
      activities: {
        charge: async (_input: unknown, ctx: { instanceId: string }) => {
          calls.push({ activity: 'charge', instance: ctx.instanceId, traceId: activeTraceId() })
          await gate
          return {}
        },
        ship: async (_input: unknown, ctx: { instanceId: string }) => {
          calls.push({ activity: 'ship', instance: ctx.instanceId, traceId: activeTraceId() })
          return {}
        },
      },
    })
    closers.push(async () => release()) // before the engine closes, should an assertion fail
    await engine.start(flow, { id: 'f-1', input: { id: 'f-1' } })
    await engine.start(flow, { id: 'f-2', input: { id: 'f-2' } })
    await engine.send('f-1', { type: 'GO' })
    await engine.send('f-2', { type: 'WAIT' })
    await expect.poll(() => calls.length).toBe(1)
    const charging = await store.load('f-1')
    expect(charging?.tasks).toHaveLength(1)
    expect(charging?.tasks[0]).not.toHaveProperty('trace')
    const waiting = await store.load('f-2')
    expect(waiting?.timers).toHaveLength(1)
    expect(waiting?.timers[0]).not.toHaveProperty('trace')
    release()
    await engine.waitFor('f-1', (i) => i.status === 'done')
    const shipping = await store.history('f-1')
    expect(shipping.map((h) => h.to)).toEqual(['idle', 'charging', 'charged', 'done'])
    await clock.advance(5 * 60_000)
    for (const [topic, id] of [
      ['flow.started', 'f-1'],
      ['flow.charged', 'f-1'],
      ['flow.shipped', 'f-1'],
      ['flow.expired', 'f-2'],
    ] as const) {
      const seen = await message(topic, id)
      expect(seen.traceparent, topic).toBeUndefined()
      expect(seen.active, topic).toBeUndefined()
    }
    expect(calls.map((c) => c.traceId)).toEqual([undefined, undefined])
  })

  it('gives each of concurrent sends to one instance its own trace (the later ones wait in its lane)', async () => {
    const { engine, message } = await setup()
    await engine.start(flow, { id: 'g-1', input: { id: 'g-1' } })
    const second = trace.setSpanContext(ROOT_CONTEXT, spanContextOf(OTHER_TRACE_ID))
    await Promise.all([
      context.with(request, () => engine.send('g-1', { type: 'PING', n: 1 })),
      context.with(second, () => engine.send('g-1', { type: 'PING', n: 2 })),
      context.with(ROOT_CONTEXT, () => engine.send('g-1', { type: 'PING', n: 3 })),
    ])
    const pings = await Promise.all([1, 2, 3].map((n) => message('flow.ping', 'g-1', n)))
    expect(pings.map((p) => traceIdOf(p.traceparent))).toEqual([TRACE_ID, OTHER_TRACE_ID, undefined])
  })

  it('continues the trace of a message that listen turns into an event', async () => {
    const { engine, broker, message } = await setup()
    await engine.start(flow, { id: 'h-1', input: { id: 'h-1' } })
    const listener = await engine.listen('flow.commands', (m) => ({
      instance: (m.data as { id: string }).id,
      event: { type: 'PING', n: 7 },
    }))
    closers.push(() => listener.close())
    await context.with(request, () => broker.publish('flow.commands', { id: 'h-1' }))
    const ping = await message('flow.ping', 'h-1', 7)
    expect(traceIdOf(ping.traceparent)).toBe(TRACE_ID)
  })

  it('publishes rows of another committer (the outbox poller) in their own trace, trace headers not passed twice', async () => {
    const store = memoryStore()
    const clock = manualClock()
    // Commits only: its outbox rows are left to a driving engine.
    const committer = await createEngine({ store, machines: [flow], clock, worker: false })
    await context.with(request, () => committer.start(flow, { id: 'i-1', input: { id: 'i-1' } }))
    await context.with(request, () => committer.send('i-1', { type: 'PING', n: 1 }))
    const published: { topic: string; headers: Record<string, string> | undefined; active: Record<string, string> }[] =
      []
    const broker = {
      async publish(topic: string, _data: unknown, options?: { headers?: Record<string, string> }) {
        const active: Record<string, string> = {}
        propagation.inject(context.active(), active)
        published.push({ topic, headers: options?.headers, active })
      },
      subscribe: async () => ({ close: async () => undefined }),
    }
    await clock.advance(60_000) // past the committer's hold on its rows
    const driver = await context.with(unrelated, () =>
      createEngine({
        store,
        machines: [flow],
        clock,
        broker,
        activities: { charge: async () => ({}), ship: async () => ({}) },
      }),
    )
    closers.push(async () => {
      await driver.close()
      await committer.close()
    })
    expect(published).toHaveLength(1)
    expect(published[0]?.headers).toBeUndefined()
    expect(traceIdOf(published[0]?.active.traceparent)).toBe(TRACE_ID)
  })

  it('leaves a traceparent the emit wrote itself in place of the transition’s', async () => {
    const own = defineMachine({
      id: 'own',
      version: 1,
      context: Flow,
      initial: 'a',
      states: {
        a: {
          on: {
            GO: {
              target: 'b',
              emit: (c) => ({
                topic: 'flow.ping',
                data: { id: c.id, n: 1 },
                headers: { traceparent: `00-${OTHER_TRACE_ID}-00f067aa0ba902b7-01`, 'x-app': 'kept' },
              }),
            },
          },
        },
        b: { type: 'final' },
      },
    })
    const { engine, message, seen } = await setup({ machines: [flow, own] })
    await engine.start(own, { id: 'j-1', input: { id: 'j-1' } })
    await context.with(request, () => engine.send('j-1', { type: 'GO' }))
    const ping = await message('flow.ping', 'j-1', 1)
    expect(traceIdOf(ping.traceparent)).toBe(OTHER_TRACE_ID)
    expect(seen).toHaveLength(1)
  })
})

// ---------------------------------------------------------------- spans

interface RecordedSpan {
  name: string
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  attributes: Attributes
  status: SpanStatus | undefined
  exceptions: unknown[]
  ended: boolean
}

/** A tracer that records what it is asked to do: enough to check the engine's spans without an SDK. */
function recordingProvider(spans: RecordedSpan[]): TracerProvider {
  const startSpan = (name: string, options: { attributes?: Attributes } = {}, ctx?: Context): Span => {
    const parent = trace.getSpanContext(ctx ?? context.active())
    const recorded: RecordedSpan = {
      name,
      traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      parentSpanId: parent?.spanId,
      attributes: { ...options.attributes },
      status: undefined,
      exceptions: [],
      ended: false,
    }
    spans.push(recorded)
    const span: Span = {
      spanContext: () => ({ traceId: recorded.traceId, spanId: recorded.spanId, traceFlags: 1 }),
      setAttribute: (key, value) => {
        if (value !== undefined) recorded.attributes[key] = value
        return span
      },
      setAttributes: (attributes) => {
        Object.assign(recorded.attributes, attributes)
        return span
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (status) => {
        recorded.status = status
        return span
      },
      updateName: (next) => {
        recorded.name = next
        return span
      },
      end: () => {
        recorded.ended = true
      },
      isRecording: () => !recorded.ended,
      recordException: (exception) => {
        recorded.exceptions.push(exception)
      },
    }
    return span
  }
  const tracer = {
    startSpan,
    startActiveSpan: () => {
      throw new Error('not used by the engine')
    },
  } as unknown as Tracer
  return { getTracer: () => tracer }
}

describe('activity spans', () => {
  const spans: RecordedSpan[] = []
  beforeAll(() => {
    expect(trace.setGlobalTracerProvider(recordingProvider(spans))).toBe(true)
  })
  afterAll(() => {
    trace.disable()
  })

  const fakeBroker = () => {
    const published: { topic: string; traceparent: string | undefined }[] = []
    return {
      published,
      broker: {
        async publish(topic: string) {
          const carrier: Record<string, string> = {}
          propagation.inject(context.active(), carrier)
          published.push({ topic, traceparent: carrier.traceparent })
        },
        subscribe: async () => ({ close: async () => undefined }),
      },
    }
  }

  it('runs each attempt in an INTERNAL span "activity <name>", a child of the transition; the next transition continues from it', async () => {
    const { broker, published } = fakeBroker()
    let activeName: string | undefined
    const engine = await createEngine({
      store: memoryStore(),
      machines: [flow],
      clock: manualClock(),
      broker,
      activities: {
        charge: async () => {
          activeName = spans.find((s) => s.spanId === trace.getActiveSpan()?.spanContext().spanId)?.name
          return {}
        },
        ship: async () => ({}),
      },
    })
    closers.push(() => engine.close())
    await engine.start(flow, { id: 's-1', input: { id: 's-1' } })
    await context.with(request, () => engine.send('s-1', { type: 'GO' }))
    await engine.waitFor('s-1', (i) => i.status === 'done')
    await expect.poll(() => published.map((p) => p.topic)).toEqual(['flow.started', 'flow.charged', 'flow.shipped'])
    const charge = spans.find((s) => s.name === 'activity charge' && s.attributes['workflow.instance.id'] === 's-1')
    const ship = spans.find((s) => s.name === 'activity ship' && s.attributes['workflow.instance.id'] === 's-1')
    expect(activeName).toBe('activity charge')
    expect(charge).toMatchObject({
      traceId: TRACE_ID,
      parentSpanId: '00f067aa0ba902b7',
      ended: true,
      status: undefined,
      attributes: {
        'workflow.instance.id': 's-1',
        'workflow.machine': 'flow',
        'workflow.machine.version': 1,
        'workflow.state': 'charging',
        'workflow.activity': 'charge',
        'workflow.activity.attempt': 1,
        'workflow.activity.idempotency_key': 's-1/charging/2',
      },
    })
    // The transition activity.done committed in the charge span: its message and the next activity descend from it.
    const [, charged, shipped] = published
    expect(charged?.traceparent?.split('-')[2]).toBe(charge?.spanId)
    expect(ship).toMatchObject({ traceId: TRACE_ID, parentSpanId: charge?.spanId, ended: true })
    expect(shipped?.traceparent?.split('-')[2]).toBe(ship?.spanId)
  })

  it('ends the span of a failed attempt with status ERROR and the exception', async () => {
    const { broker, published } = fakeBroker()
    const engine = await createEngine({
      store: memoryStore(),
      machines: [flow],
      clock: manualClock(),
      broker,
      activities: {
        charge: async () => {
          throw new NonRetryableError('card declined')
        },
        ship: async () => ({}),
      },
    })
    closers.push(() => engine.close())
    await engine.start(flow, { id: 's-2', input: { id: 's-2' } })
    await context.with(request, () => engine.send('s-2', { type: 'GO' }))
    expect((await engine.waitFor('s-2', (i) => i.status === 'done')).state).toBe('declined')
    const charge = spans.find((s) => s.name === 'activity charge' && s.attributes['workflow.instance.id'] === 's-2')
    expect(charge?.ended).toBe(true)
    expect(charge?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'card declined' })
    expect(charge?.attributes['error.type']).toBe('NonRetryableError')
    expect(charge?.exceptions).toHaveLength(1)
    await expect.poll(() => published.map((p) => p.topic)).toEqual(['flow.started', 'flow.declined'])
    expect(published[1]?.traceparent?.split('-')[2]).toBe(charge?.spanId)
  })
})
