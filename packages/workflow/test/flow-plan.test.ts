import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type ActivityControl,
  type AdmitResult,
  applyControl,
  breakerState,
  type ControlChange,
  type FlowLimits,
  type FlowRate,
  type FlowRequest,
  type FlowSlot,
  type FlowStart,
  initialControl,
  planAdmission,
} from '../src/flow-store.js'

const OWNERS = ['A', 'B'] as const

/** The queue order the plan promises: earlier `since` first, ties by holder (code-unit order). */
const queueOrder = (a: FlowSlot, b: FlowSlot): number =>
  a.since - b.since || (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0)

/** One call to the plan, with the inputs as they were before the call. */
interface Call {
  readonly slots: readonly FlowSlot[]
  readonly starts: readonly FlowStart[]
  readonly now: number
  readonly asking: ReadonlySet<string>
  readonly result: AdmitResult
}

/**
 * What a store's `admitActivity` does, in memory: nothing goes stale here (every owner is alive),
 * requests are upserted keeping their place, granted rows become running and their start is logged.
 * Starts are never pruned, so the rate invariants can look at the whole history.
 */
class QueueModel {
  readonly rows = new Map<string, FlowSlot>()
  readonly starts: FlowStart[] = []
  now = 0
  private nextHolder = 0

  constructor(readonly limits: FlowLimits) {}

  newHolder(): string {
    return `h${this.nextHolder++}`
  }

  waiting(owner?: string): FlowSlot[] {
    return [...this.rows.values()].filter((r) => !r.running && (owner === undefined || r.owner === owner))
  }

  admit(owner: string, requests: readonly FlowRequest[]): Call {
    for (const r of requests)
      if (!this.rows.has(r.holder)) this.rows.set(r.holder, { ...r, owner, running: false, seenAt: this.now })
    const slots = [...this.rows.values()]
    const starts = [...this.starts]
    const asking = new Set(requests.map((r) => r.holder))
    const result = planAdmission(slots, starts, this.limits, this.now, asking)
    for (const holder of result.granted) {
      const row = this.rows.get(holder) as FlowSlot
      this.rows.set(holder, { ...row, running: true })
      this.starts.push({ key: row.key, at: this.now })
    }
    return { slots, starts, now: this.now, asking, result }
  }
}

const countIn = (starts: readonly FlowStart[], rate: FlowRate, now: number, key?: string): number =>
  starts.filter((s) => s.at > now - rate.per && s.at <= now && (key === undefined || s.key === key)).length

/** For every window (t - per, t]: the busiest windows end on a start, so checking those covers every t. */
const expectRateKept = (starts: readonly FlowStart[], rate: FlowRate): void => {
  for (const s of starts) expect(countIn(starts, rate, s.at)).toBeLessThanOrEqual(rate.limit)
}

/** The state invariants: what runs and what started stay within every limit. */
const expectWithinLimits = (model: QueueModel): void => {
  const { concurrency, rate, keyConcurrency, keyRate } = model.limits
  const running = [...model.rows.values()].filter((r) => r.running)
  if (concurrency !== undefined) expect(running.length).toBeLessThanOrEqual(concurrency)
  const keys = new Set([...model.rows.values(), ...model.starts].map((r) => r.key))
  keys.delete(null)
  for (const key of keys as Set<string>) {
    if (keyConcurrency !== undefined)
      expect(running.filter((r) => r.key === key).length).toBeLessThanOrEqual(keyConcurrency)
    if (keyRate)
      expectRateKept(
        model.starts.filter((s) => s.key === key),
        keyRate,
      )
  }
  if (rate) expectRateKept(model.starts, rate)
}

/**
 * The order and fairness of one call, stated exactly. F is what the plan admits when every waiting
 * row asks (the plan is pure, so that is what it gave this call plus what it kept for other owners).
 * "Full after" counts what runs, what started inside the window, and everything in F:
 * - the grant is F restricted to the askers (asking changes nothing but who is told);
 * - admitting all of F stays within every limit;
 * - maximal: a waiting row left out of F has its key full after, or the activity is full after;
 * - in order: when r comes before s in the queue, s is in F and r is not, then r was passed over for
 *   its key (non-null, full after, and not s's key). So F is a prefix of the queue once rows whose
 *   key filled up are removed, and no row of a full key overtakes an earlier one of the same key.
 */
const expectFairCall = (limits: FlowLimits, call: Call): void => {
  const { slots, starts, now, asking, result } = call
  const waiting = slots.filter((s) => !s.running).sort(queueOrder)
  const running = slots.filter((s) => s.running)
  const everyone = planAdmission(slots, starts, limits, now, new Set(waiting.map((s) => s.holder)))
  expect(result.granted).toEqual(everyone.granted.filter((h) => asking.has(h)))
  const inF = new Set(everyone.granted)
  const admitted = waiting.filter((s) => inF.has(s.holder))
  expect(admitted.map((s) => s.holder)).toEqual(everyone.granted)

  const used = (key?: string | null) => {
    const mine = (r: { key: string | null }) => key === undefined || r.key === key
    return running.filter(mine).length + admitted.filter(mine).length
  }
  const rateUsed = (rate: FlowRate, key?: string) =>
    countIn(starts, rate, now, key) + admitted.filter((s) => key === undefined || s.key === key).length
  const activityFull =
    (limits.concurrency !== undefined && used() >= limits.concurrency) ||
    (limits.rate !== undefined && rateUsed(limits.rate) >= limits.rate.limit)
  const keyFull = (key: string | null): boolean =>
    key !== null &&
    ((limits.keyConcurrency !== undefined && used(key) >= limits.keyConcurrency) ||
      (limits.keyRate !== undefined && rateUsed(limits.keyRate, key) >= limits.keyRate.limit))

  if (admitted.length > 0) {
    if (limits.concurrency !== undefined) expect(used()).toBeLessThanOrEqual(limits.concurrency)
    if (limits.rate) expect(rateUsed(limits.rate)).toBeLessThanOrEqual(limits.rate.limit)
    for (const { key } of admitted) {
      if (key === null) continue
      if (limits.keyConcurrency !== undefined) expect(used(key)).toBeLessThanOrEqual(limits.keyConcurrency)
      if (limits.keyRate) expect(rateUsed(limits.keyRate, key)).toBeLessThanOrEqual(limits.keyRate.limit)
    }
  }
  for (const row of waiting) if (!inF.has(row.holder)) expect(activityFull || keyFull(row.key)).toBe(true)
  waiting.forEach((r, i) => {
    if (inF.has(r.holder)) return
    for (const s of waiting.slice(i + 1))
      if (inF.has(s.holder)) {
        expect(r.key).not.toBeNull()
        expect(s.key).not.toBe(r.key)
        expect(keyFull(r.key)).toBe(true)
      }
  })

  // Liveness: nothing runs and no rate can hold anyone back, so the front of the queue gets a slot.
  const front = waiting[0]
  if (front && running.length === 0 && !limits.rate && !limits.keyRate) {
    expect(inF.has(front.holder)).toBe(true)
    if (asking.has(front.holder)) expect(result.granted).toContain(front.holder)
  }
  // No lost wake-up: an asker told to wait for a slot (no retryAt) waits on a concurrency limit, of
  // the activity or of its key, that rows hold (running, or admitted now): a release will wake it.
  if (result.retryAt === null)
    for (const row of waiting)
      if (asking.has(row.holder) && !inF.has(row.holder)) {
        const slotsFull = limits.concurrency !== undefined && used() >= limits.concurrency
        const keySlotsFull =
          row.key !== null && limits.keyConcurrency !== undefined && used(row.key) >= limits.keyConcurrency
        expect(slotsFull || keySlotsFull).toBe(true)
      }
  if (result.retryAt !== null) expect(result.retryAt).toBeGreaterThan(now)
}

/**
 * retryAt, against the store as the call left it (nothing else changed). Not late: asking again at
 * any earlier time admits none of the askers still waiting. No spin: asking again at retryAt never
 * answers retryAt or earlier.
 */
const expectRetryHonest = (model: QueueModel, call: Call): void => {
  const retryAt = call.result.retryAt
  if (retryAt === null) return
  const slots = [...model.rows.values()]
  const asking = new Set(
    model
      .waiting()
      .filter((s) => call.asking.has(s.holder))
      .map((s) => s.holder),
  )
  for (const at of new Set([call.now, Math.floor((call.now + retryAt) / 2), retryAt - 1]))
    if (at < retryAt) expect(planAdmission(slots, model.starts, model.limits, at, asking).granted).toEqual([])
  const again = planAdmission(slots, model.starts, model.limits, retryAt, asking)
  if (again.retryAt !== null) expect(again.retryAt).toBeGreaterThan(retryAt)
}

type Command =
  /** New attempts of one owner, asking together (an engine asks with every attempt that fell due). */
  | { readonly kind: 'request'; readonly owner: number; readonly keys: readonly (number | null)[] }
  | { readonly kind: 'release'; readonly pick: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'ask'; readonly owner: number }

const rateArb = fc.record({ limit: fc.integer({ min: 1, max: 4 }), per: fc.integer({ min: 1, max: 1000 }) })
const limitsArb: fc.Arbitrary<FlowLimits> = fc.record({
  concurrency: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  rate: fc.option(rateArb, { nil: undefined }),
  keyConcurrency: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  keyRate: fc.option(rateArb, { nil: undefined }),
})
/** Keys are opaque: a small alphabet to make them collide, and any string (controls, empty, 'null'). */
const keysArb = fc.uniqueArray(
  fc.oneof(
    fc.constantFrom('a', 'b', 'c', '', 'null', '\u0000', '__proto__'),
    fc.string({ unit: 'binary', maxLength: 4 }),
  ),
  { minLength: 2, maxLength: 3 },
)
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('request' as const),
      owner: fc.integer({ min: 0, max: 1 }),
      keys: fc.array(fc.option(fc.nat(2), { nil: null }), { minLength: 1, maxLength: 3 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 600 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('ask' as const), owner: fc.integer({ min: 0, max: 1 }) }), weight: 2 },
)

const run = (limits: FlowLimits, keys: readonly string[], commands: readonly Command[]): void => {
  const model = new QueueModel(limits)
  for (const command of commands) {
    let call: Call | undefined
    switch (command.kind) {
      case 'request': {
        const requests = command.keys.map((k) => ({
          holder: model.newHolder(),
          key: k === null ? null : (keys[k % keys.length] as string),
          since: model.now,
        }))
        call = model.admit(OWNERS[command.owner] as string, requests)
        break
      }
      case 'release': {
        const running = [...model.rows.values()].filter((r) => r.running)
        const row = running[command.pick % Math.max(running.length, 1)]
        if (row) model.rows.delete(row.holder)
        break
      }
      case 'advance':
        model.now += command.ms
        break
      case 'ask': {
        const owner = OWNERS[command.owner] as string
        call = model.admit(owner, model.waiting(owner))
        break
      }
    }
    if (call) {
      expectFairCall(limits, call)
      expectRetryHonest(model, call)
    }
    expectWithinLimits(model)
  }
}

describe('planAdmission (model-based)', () => {
  it('keeps every limit, the queue order, liveness and useful retry times', () => {
    fc.assert(fc.property(limitsArb, keysArb, fc.array(commandArb, { maxLength: 60, size: 'max' }), run), {
      numRuns: 200,
    })
  })
})

const slot = (holder: string, key: string | null, since: number, running = false, owner = 'A'): FlowSlot => ({
  holder,
  key,
  since,
  owner,
  running,
  seenAt: since,
})

describe('planAdmission (examples)', () => {
  it('gives the one slot to the front of a 3-row queue, ties by holder, and keeps it for its owner', () => {
    const rows = [slot('c', null, 2), slot('b', null, 1), slot('a', null, 1)]
    expect(planAdmission(rows, [], { concurrency: 1 }, 10, new Set(['a', 'b', 'c']))).toEqual({
      granted: ['a'],
      retryAt: null,
    })
    expect(planAdmission(rows, [], { concurrency: 1 }, 10, new Set(['b', 'c']))).toEqual({ granted: [], retryAt: null })
    expect(planAdmission([...rows, slot('r', null, 0, true)], [], { concurrency: 1 }, 10, new Set(['a']))).toEqual({
      granted: [],
      retryAt: null,
    })
  })

  it('waits until the oldest start leaves a full rate window', () => {
    const limits = { rate: { limit: 2, per: 1000 } }
    const starts = [
      { key: null, at: 0 },
      { key: null, at: 500 },
    ]
    const rows = [slot('x', null, 600), slot('y', null, 600)]
    expect(planAdmission(rows, starts, limits, 600, new Set(['x', 'y']))).toEqual({ granted: [], retryAt: 1000 })
    expect(planAdmission(rows, starts, limits, 1000, new Set(['x', 'y']))).toEqual({ granted: ['x'], retryAt: 1500 })
  })

  it('passes over a row whose key is full and goes on with other keys', () => {
    const rows = [slot('run', 'k', 0, true), slot('k1', 'k', 1), slot('n1', 'n', 2), slot('z', null, 3)]
    const asking = new Set(['k1', 'n1', 'z'])
    expect(planAdmission(rows, [], { concurrency: 2, keyConcurrency: 1 }, 5, asking)).toEqual({
      granted: ['n1'],
      retryAt: null,
    })
    expect(planAdmission(rows, [], { keyConcurrency: 1 }, 5, asking)).toEqual({ granted: ['n1', 'z'], retryAt: null })
  })

  // Shrunk by fast-check from the simulation: the activity window (rate 1 per 1) is full at 0, but
  // h1's key is also at its keyConcurrency (h0 runs), so a window opening cannot help it: no retryAt.
  it('retryAt is a time when asking again helps (early retryAt: key slot still held)', () => {
    const limits = { rate: { limit: 1, per: 1 }, keyConcurrency: 1 }
    const rows = [slot('h0', 'a', 0, true), slot('h1', 'a', 0)]
    const starts = [{ key: 'a', at: 0 }]
    const first = planAdmission(rows, starts, limits, 0, new Set(['h1']))
    expect(first).toEqual({ granted: [], retryAt: null })
    if (first.retryAt === null) return
    const again = planAdmission(rows, starts, limits, first.retryAt, new Set(['h1']))
    expect(again.granted.length > 0 || (again.retryAt !== null && again.retryAt > first.retryAt)).toBe(true)
  })
})

type Step = { readonly dt: number; readonly change: ControlChange }

const holderArb = fc.constantFrom('p', 'q')
/** Times in steps of 100 ms, so a change often lands exactly on openUntil or probeUntil. */
const ticks = (max: number, min = 0) => fc.integer({ min, max }).map((n) => n * 100)

const probeArb = fc.record({ kind: fc.constant('probe' as const), holder: holderArb, until: ticks(10) })
const successArb = fc.record({ kind: fc.constant('success' as const), holder: holderArb })

/**
 * A breaker's settings are fixed per activity; the changes come in any order, at any pace. Half the
 * runs never pause: a pause holds until a resume, which also closes the breaker, so runs with pauses
 * rarely reach the half-open probes.
 */
const controlCase = fc
  .record({ threshold: fc.integer({ min: 1, max: 5 }), cooldown: ticks(10, 1), pauses: fc.boolean() })
  .chain(({ threshold, cooldown, pauses }) => {
    const failureArb = fc.record({
      kind: fc.constant('failure' as const),
      holder: holderArb,
      threshold: fc.constant(threshold),
      cooldown: fc.constant(cooldown),
    })
    const change: fc.Arbitrary<ControlChange> = fc.oneof(
      { arbitrary: fc.constantFrom<ControlChange>({ kind: 'pause' }, { kind: 'resume' }), weight: pauses ? 2 : 0 },
      { arbitrary: probeArb, weight: 4 },
      { arbitrary: successArb, weight: 1 },
      { arbitrary: failureArb, weight: 4 },
    )
    const steps: fc.Arbitrary<Step[]> = fc.array(fc.record({ dt: ticks(8), change }), { maxLength: 60, size: 'max' })
    return fc.tuple(fc.constant(threshold), steps)
  })

describe('applyControl', () => {
  it('keeps the breaker and pause rules over any sequence of changes', () => {
    fc.assert(
      fc.property(controlCase, ([threshold, steps]) => {
        let control: ActivityControl | undefined
        let now = 0
        let streak = 0
        let paused = false
        let updatedAt = 0
        for (const { dt, change: raw } of steps) {
          now += dt
          // A probe claims its slot until some time from now.
          const change: ControlChange = raw.kind === 'probe' ? { ...raw, until: now + raw.until } : raw
          const before = control ?? initialControl('act', now)
          const { control: after, applied } = applyControl(control, 'act', change, now)

          if (change.kind === 'probe') {
            const live = before.probe !== null && before.probeUntil > now && before.probe !== change.holder
            const due = !before.paused && before.openUntil !== null && before.openUntil <= now
            expect(applied).toBe(due && !live)
            if (applied) expect([after.probe, after.probeUntil]).toEqual([change.holder, change.until])
          } else expect(applied).toBe(true)
          if (!applied) expect(after).toEqual(before)

          // An untouched activity reads as its initial row, stamped now.
          if (applied || control === undefined) updatedAt = now
          if (change.kind === 'failure') streak++
          if (change.kind === 'success' || change.kind === 'resume') streak = 0
          if (change.kind === 'pause') paused = true
          if (change.kind === 'resume') paused = false

          expect(after.activity).toBe('act')
          expect(after.updatedAt).toBe(updatedAt)
          expect(after.failures).toBe(streak)
          expect(after.paused).toBe(paused)
          for (const at of [now, now + dt, after.openUntil ?? now])
            expect(breakerState(after, at) === 'closed').toBe(after.openUntil === null)
          if (change.kind === 'success' || change.kind === 'resume')
            expect([after.openUntil, after.probe, after.probeUntil]).toEqual([null, null, 0])
          if (change.kind === 'failure') {
            if (before.probe === change.holder || (before.openUntil === null && streak >= threshold)) {
              expect(after.openUntil).toBe(now + change.cooldown)
              expect(breakerState(after, now)).toBe('open')
              expect(after.probe).toBeNull()
            } else expect(after.openUntil).toBe(before.openUntil)
            if (before.openUntil === null && streak < threshold) expect(breakerState(after, now)).toBe('closed')
          }
          if (change.kind === 'pause')
            expect({ ...after, paused: before.paused, updatedAt: 0 }).toEqual({ ...before, updatedAt: 0 })
          control = after
        }
      }),
      { numRuns: 300 },
    )
  })
})
