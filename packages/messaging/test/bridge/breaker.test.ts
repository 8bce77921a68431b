/**
 * The webhook breaker's state machine (a pure function of snapshot, event and settings: the
 * clock is whatever the events say) and the circuit that runs it (the probe gate, pause/resume in
 * order, the timer).
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import {
  admit,
  type BreakerEvent,
  type BreakerSettings,
  type BreakerSnapshot,
  type BreakerState,
  CLOSED,
  scheduledWait,
  transition,
} from '../../src/bridge/breaker.js'
import { type BridgeOptions, createBridge } from '../../src/bridge/index.js'
import { WebhookCircuit } from '../../src/bridge/webhook-circuit.js'
import { freePort, type RunningBridge, receiver, sleep, startBridge, until } from './helpers.js'

const settings: BreakerSettings = { failures: 3, schedule: [100, 1_000, 5_000], disableAfter: 60_000 }

/** Runs events in order, each at its time. */
function run(events: BreakerEvent[], s = settings, from: BreakerSnapshot = CLOSED): BreakerSnapshot {
  return events.reduce((snapshot, event) => transition(snapshot, event, s), from)
}

const fail = (at: number, extra: Partial<Extract<BreakerEvent, { type: 'failure' }>> = {}): BreakerEvent => ({
  type: 'failure',
  at,
  ...extra,
})

/** Opens a closed breaker at `at` with `settings.failures` failures. */
const openAt = (at: number, s = settings) =>
  run(
    Array.from({ length: s.failures }, () => fail(at)),
    s,
  )

describe('webhook breaker: transitions', () => {
  it('opens after `failures` consecutive failures; a success in between starts the count again', () => {
    expect(run([fail(1), fail(2)]).state).toBe('closed')
    expect(run([fail(1), fail(2), { type: 'success', at: 3 }, fail(4), fail(5)]).state).toBe('closed')
    const opened = run([fail(1), fail(2), fail(3)])
    expect(opened).toMatchObject({ state: 'open', failures: 3, openedAt: 3, failingSince: 3, nextProbeAt: 103 })
    expect(admit(opened)).toBe('refuse')
  })

  it('while open, late outcomes and an early timer change nothing; at nextProbeAt it is half-open with one probe', () => {
    const opened = openAt(0)
    expect(transition(opened, { type: 'success', at: 10 }, settings)).toBe(opened)
    expect(transition(opened, fail(10), settings)).toBe(opened)
    expect(transition(opened, { type: 'wait-ended', at: 99 }, settings)).toBe(opened)
    const half = transition(opened, { type: 'wait-ended', at: 100 }, settings)
    expect(half).toMatchObject({ state: 'half-open', nextProbeAt: undefined, probing: false })
    expect(admit(half)).toBe('probe')
    const probing = transition(half, { type: 'probe-started', at: 101 }, settings)
    expect(probing).toMatchObject({ probing: true, probes: 1 })
    expect(admit(probing)).toBe('hold')
    // Only the probe's outcome counts.
    expect(transition(probing, { type: 'success', at: 102 }, settings)).toBe(probing)
    expect(transition(probing, { type: 'success', at: 102, probe: true }, settings)).toBe(CLOSED)
  })

  it('failed probes wait by the schedule, the last wait repeating; a longer Retry-After wins', () => {
    let snapshot = openAt(0)
    const waits: number[] = []
    for (let i = 0; i < 5; i++) {
      const at = snapshot.nextProbeAt as number
      snapshot = run(
        [{ type: 'wait-ended', at }, { type: 'probe-started', at }, fail(at, { probe: true })],
        settings,
        snapshot,
      )
      waits.push((snapshot.nextProbeAt as number) - at)
    }
    expect(waits).toEqual([1_000, 5_000, 5_000, 5_000, 5_000])
    expect(snapshot).toMatchObject({ state: 'open', probes: 5, failures: 8, failingSince: 0 })
    const at = snapshot.nextProbeAt as number
    const asked = run(
      [
        { type: 'wait-ended', at },
        { type: 'probe-started', at },
      ],
      settings,
      snapshot,
    )
    const later = transition(asked, fail(at, { probe: true, retryAfter: 9_000 }), settings)
    expect(later.nextProbeAt).toBe(at + 9_000)
  })

  it('a breaker failing for disableAfter disables the subscription; enable starts afresh', () => {
    const s = { ...settings, disableAfter: 3_000 }
    let snapshot = openAt(0, s)
    // The probes never wait past the deadline: the last one is at failingSince + disableAfter.
    const probedAt: number[] = []
    while (snapshot.state === 'open') {
      const at = snapshot.nextProbeAt as number
      probedAt.push(at)
      snapshot = run(
        [{ type: 'wait-ended', at }, { type: 'probe-started', at }, fail(at, { probe: true })],
        s,
        snapshot,
      )
    }
    expect(probedAt).toEqual([100, 1_100, 3_000])
    expect(snapshot).toMatchObject({ state: 'disabled', disabledAt: 3_000, nextProbeAt: undefined, probes: 3 })
    expect(snapshot.reason).toContain('no successful call since 1970-01-01T00:00:00.000Z')
    expect(admit(snapshot)).toBe('refuse')
    expect(transition(snapshot, { type: 'wait-ended', at: 9_000 }, s)).toBe(snapshot)
    expect(transition(snapshot, { type: 'success', at: 9_000 }, s)).toBe(snapshot)
    expect(transition(snapshot, { type: 'enable', at: 9_000 }, s)).toBe(CLOSED)
  })

  it('a disable from elsewhere (the store) holds in any state until enabled', () => {
    for (const from of [CLOSED, openAt(0)]) {
      const off = transition(from, { type: 'disable', at: 5, reason: 'restored' }, settings)
      expect(off).toMatchObject({ state: 'disabled', reason: 'restored', disabledAt: 5 })
      expect(transition(off, { type: 'disable', at: 6, reason: 'again' }, settings)).toBe(off)
    }
  })
})

// Property tests: any sequence of events, in time order.
const settingsArb: fc.Arbitrary<BreakerSettings> = fc.record({
  failures: fc.integer({ min: 1, max: 6 }),
  schedule: fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 6 }),
  disableAfter: fc.integer({ min: 1, max: 50_000 }),
})

type Step = { type: BreakerEvent['type']; dt: number; probe: boolean; retryAfter: number | undefined }
const stepArb: fc.Arbitrary<Step> = fc.record({
  type: fc.constantFrom<BreakerEvent['type']>(
    'success',
    'failure',
    'failure',
    'failure',
    'wait-ended',
    'wait-ended',
    'probe-started',
    'enable',
    'disable',
  ),
  dt: fc.integer({ min: 0, max: 6_000 }),
  probe: fc.boolean(),
  retryAfter: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
})

function toEvent(step: Step, at: number, snapshot: BreakerSnapshot): BreakerEvent {
  switch (step.type) {
    case 'success':
      return { type: 'success', at, probe: step.probe }
    case 'failure':
      return { type: 'failure', at, probe: step.probe, retryAfter: step.retryAfter }
    case 'wait-ended':
      // The timer fires at nextProbeAt (or later); sometimes a stray early one.
      return { type: 'wait-ended', at: step.probe ? Math.max(at, snapshot.nextProbeAt ?? at) : at }
    case 'disable':
      return { type: 'disable', at, reason: 'elsewhere' }
    default:
      return { type: step.type, at } as BreakerEvent
  }
}

const ALLOWED: Record<BreakerState, BreakerState[]> = {
  closed: ['closed', 'open', 'disabled'],
  open: ['open', 'half-open', 'closed', 'disabled'],
  'half-open': ['half-open', 'closed', 'open', 'disabled'],
  disabled: ['disabled', 'closed'],
}

function checkInvariants(s: BreakerSettings, snapshot: BreakerSnapshot): void {
  switch (snapshot.state) {
    case 'closed':
      expect(snapshot.failures).toBeLessThan(s.failures)
      expect([snapshot.openedAt, snapshot.failingSince, snapshot.nextProbeAt, snapshot.probing]).toEqual([
        undefined,
        undefined,
        undefined,
        false,
      ])
      expect(admit(snapshot)).toBe('call')
      break
    case 'open': {
      const [openedAt, failingSince, nextProbeAt] = [
        snapshot.openedAt,
        snapshot.failingSince,
        snapshot.nextProbeAt,
      ] as [number, number, number]
      expect(failingSince).toBeLessThanOrEqual(openedAt)
      expect(nextProbeAt).toBeGreaterThanOrEqual(openedAt)
      expect(nextProbeAt).toBeLessThanOrEqual(failingSince + s.disableAfter)
      expect(snapshot.failures).toBeGreaterThanOrEqual(s.failures)
      expect(snapshot.probing).toBe(false)
      expect(admit(snapshot)).toBe('refuse')
      break
    }
    case 'half-open':
      expect(snapshot.failingSince).toBeDefined()
      expect(snapshot.nextProbeAt).toBeUndefined()
      expect(admit(snapshot)).toBe(snapshot.probing ? 'hold' : 'probe')
      break
    case 'disabled':
      expect(snapshot.disabledAt).toBeDefined()
      expect(snapshot.reason).toBeDefined()
      expect(admit(snapshot)).toBe('refuse')
  }
}

describe('webhook breaker: properties', () => {
  it('every reachable snapshot keeps the invariants, and only the allowed transitions happen', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(stepArb, { maxLength: 80 }), (s, steps) => {
        let snapshot = CLOSED
        let at = 0
        for (const step of steps) {
          at += step.dt
          const event = toEvent(step, at, snapshot)
          at = event.at
          const next = transition(snapshot, event, s)
          expect(ALLOWED[snapshot.state]).toContain(next.state)
          // Back to closed from open or disabled: only by enable.
          if (next.state === 'closed' && (snapshot.state === 'open' || snapshot.state === 'disabled'))
            expect(event.type).toBe('enable')
          // A success never opens or disables.
          if (event.type === 'success') expect([snapshot.state, 'closed']).toContain(next.state)
          // Calls only get through to a closed breaker, or as the one probe of a half-open one.
          if (event.type === 'probe-started' && next !== snapshot) expect(next.probes).toBe(snapshot.probes + 1)
          // Disabled by failures only once failing for disableAfter.
          if (next.state === 'disabled' && snapshot.state !== 'disabled' && event.type === 'failure') {
            expect(event.at - (snapshot.failingSince as number)).toBeGreaterThanOrEqual(s.disableAfter)
          }
          // An opening waits by the schedule (or a longer Retry-After), cut at the deadline.
          if (next.state === 'open' && snapshot.state !== 'open' && event.type === 'failure') {
            const wait = Math.max(scheduledWait(s, snapshot.probes), event.retryAfter ?? 0)
            const deadline = (next.failingSince as number) + s.disableAfter
            expect(next.nextProbeAt).toBe(Math.min(event.at + wait, deadline))
          }
          checkInvariants(s, next)
          snapshot = next
        }
      }),
      { numRuns: 500 },
    )
  })

  it('a dead endpoint costs `failures` calls, then one probe per schedule entry, until it is disabled', () => {
    fc.assert(
      fc.property(settingsArb, (s) => {
        let snapshot = CLOSED
        let at = 0
        let calls = 0
        const waits: number[] = []
        while (snapshot.state !== 'disabled') {
          const admission = admit(snapshot)
          if (admission === 'call' || admission === 'probe') {
            if (admission === 'probe') snapshot = transition(snapshot, { type: 'probe-started', at }, s)
            calls++
            const before = snapshot
            snapshot = transition(snapshot, fail(at, { probe: admission === 'probe' }), s)
            if (snapshot.state === 'open' && before.state !== 'open') waits.push((snapshot.nextProbeAt as number) - at)
          } else {
            at = snapshot.nextProbeAt as number
            snapshot = transition(snapshot, { type: 'wait-ended', at }, s)
          }
          expect(calls).toBeLessThanOrEqual(s.failures + s.disableAfter + 1)
        }
        // The waits are the schedule's, the last repeating, the final one cut at the deadline.
        const expected = waits.map((_, i) => scheduledWait(s, i))
        expect(waits.slice(0, -1)).toEqual(expected.slice(0, -1))
        expect(waits.at(-1)).toBeLessThanOrEqual(expected.at(-1) as number)
        expect(calls).toBe(s.failures + snapshot.probes)
        expect(snapshot.disabledAt).toBeGreaterThanOrEqual(s.disableAfter)
        expect(snapshot.disabledAt).toBe((snapshot.failingSince as number) + s.disableAfter)
      }),
      { numRuns: 300 },
    )
  })
})

describe('webhook circuit', () => {
  function circuit(s: BreakerSettings) {
    const log: string[] = []
    const c = new WebhookCircuit(s, {
      pause: async () => {
        log.push('pause')
        await sleep(5)
        log.push('paused')
      },
      resume: async () => {
        log.push('resume')
      },
      changed: (from, to) => log.push(`${from.state}>${to.state}`),
      failed: (what) => log.push(`failed ${what}`),
    })
    return { c, log }
  }

  it('pauses when it opens, resumes for the probe after the wait, holds the others until the probe ends', async () => {
    const { c, log } = circuit({ failures: 2, schedule: [30], disableAfter: 60_000 })
    expect(await c.admit()).toBe('call')
    c.report(false, false)
    c.report(false, false)
    expect(c.snapshot.state).toBe('open')
    expect(await c.admit()).toBe('refuse')
    await until(() => c.snapshot.state === 'half-open', 2_000, 'the wait')
    await c.idle()
    expect(log).toEqual(['closed>open', 'pause', 'paused', 'open>half-open', 'resume'])
    expect(await c.admit()).toBe('probe')
    const held = [c.admit(), c.admit()]
    await sleep(10)
    c.report(true, true)
    expect(await Promise.all(held)).toEqual(['call', 'call'])
    expect(c.snapshot).toBe(CLOSED)
    c.stop()
  })

  it('a failed probe sends the held deliveries back and pauses again; stop refuses everything', async () => {
    const { c, log } = circuit({ failures: 1, schedule: [20, 10_000], disableAfter: 60_000 })
    c.report(false, false)
    await until(() => c.snapshot.state === 'half-open', 2_000, 'the wait')
    expect(await c.admit()).toBe('probe')
    const held = c.admit()
    c.report(false, true, 50)
    expect(await held).toBe('refuse')
    await c.idle()
    expect(log.filter((l) => l === 'pause')).toHaveLength(2)
    expect(c.snapshot.state).toBe('open')
    expect((c.snapshot.nextProbeAt as number) - Date.now()).toBeGreaterThan(5_000)
    c.enable()
    expect(c.consuming).toBe(true)
    c.stop()
    expect(c.consuming).toBe(false)
    expect(await c.admit()).toBe('refuse')
  })
})

describe('webhook breaker in a bridge (memory broker)', () => {
  const KEY = 'test-key-0123456789abcdef'
  const bridges: RunningBridge[] = []
  afterAll(async () => {
    await Promise.allSettled(bridges.map((b) => b.close()))
  })

  it('a subscription declared in the config stays disabled across a restart, keeps its createdAt, and is enabled over the API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-breaker-unit-'))
    const file = join(dir, 'state.json')
    const r = await receiver(await freePort()) // refuses connections until started
    const options: BridgeOptions = {
      brokers: { main: `memory://breaker-${randomUUID().slice(0, 8)}` },
      auth: { keys: [{ id: 'test', key: KEY, publish: ['*'], subscribe: ['*'] }] },
      webhooks: {
        allow: ['127.0.0.1'],
        retry: { initialDelay: 10, maxDelay: 20, jitter: 'none' },
        breaker: { failures: 1, schedule: ['20ms'], disableAfter: '150ms' },
      },
      subscriptions: [{ id: 'declared', topic: 'declared.events', url: r.url }],
      store: { file },
    }
    const start = async () => {
      const b = await startBridge(options, KEY)
      bridges.push(b)
      return b
    }
    const stored = () => JSON.parse(readFileSync(file, 'utf8')).subscriptions[0]
    const first = await start()
    const createdAt = stored().createdAt
    await first.call('/v1/topics/declared.events', { json: { n: 1 } })
    await until(() => stored().disabled !== undefined, 5_000, 'the disabled flag in the store')
    expect(stored()).toMatchObject({ id: 'declared', origin: 'config', createdAt })
    await first.close()

    const second = await start()
    const view = (await second.call('/v1/subscriptions/declared')).body
    expect(view).toMatchObject({ state: 'disabled', origin: 'config', breaker: { state: 'disabled' } })
    expect(stored()).toMatchObject({ createdAt, disabled: { reason: view.breaker.reason } })
    await r.start()
    const enabled = await second.call('/v1/subscriptions/declared/enable', { method: 'POST' })
    expect(enabled.body).toMatchObject({ state: 'active', breaker: { state: 'closed' } })
    await until(() => r.received.length === 1, 5_000, 'the message that waited')
    expect(stored()).toMatchObject({ id: 'declared', origin: 'config', createdAt })
    expect(stored().disabled).toBeUndefined()
    await r.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('breaker settings are checked: 400 naming the field', async () => {
    const b = await startBridge(
      {
        brokers: { main: 'memory://' },
        auth: { keys: [{ id: 'test', key: KEY, publish: ['*'], subscribe: ['*'] }] },
        webhooks: { allow: ['127.0.0.1'] },
        store: false,
      },
      KEY,
    )
    bridges.push(b)
    const url = 'http://127.0.0.1:9/hook'
    for (const breaker of [{ schedule: [] }, { schedule: ['soon'] }, { failures: 0 }, { disableAfter: -1 }, { x: 1 }]) {
      const answer = await b.call('/v1/subscriptions', { json: { topic: 't.breaker', url, breaker } })
      expect(answer.status).toBe(400)
      expect(answer.body.error.code).toBe('INVALID_REQUEST')
      expect(answer.body.error.message).toContain('breaker')
    }
    const ok = await b.call('/v1/subscriptions', {
      json: { topic: 't.breaker', url, breaker: { schedule: ['1s', '1m'], disableAfter: '2h' } },
    })
    expect(ok.status).toBe(201)
    // Its own settings over the bridge's, in ms.
    expect(ok.body.breaker).toEqual({
      state: 'closed',
      failures: 0,
      probes: 0,
      settings: { failures: 5, schedule: [1_000, 60_000], disableAfter: 7_200_000 },
    })
    expect(() =>
      createBridge({ brokers: { main: 'memory://' }, webhooks: { breaker: { schedule: ['5s', 'later'] } } }),
    ).toThrow(/webhooks\.breaker\.schedule\.1/)
  })
})
