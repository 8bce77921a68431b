/**
 * The schedule part of the Store contract (the optional `putSchedule` group): compare-and-set
 * writes, listing, deleting, and claims that take due schedules once until their lease lapses.
 * Skipped for a store without the group.
 */
import { describe, expect } from 'vitest'
import { type ScheduleRecord, scheduleMethods } from '../schedule-store.js'
import { groupTest } from './method-group.js'
import { type Suite, T0 } from './suite.js'

export function scheduleRecord(id: string, revision: number, patch: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    id,
    revision,
    definition: {
      every: 60_000,
      timezone: 'UTC',
      machine: 'm',
      input: { n: 1 },
      inputFunction: false,
      overlap: 'skip',
      catchUp: 1,
      paused: false,
      anchor: T0,
    },
    nextTick: T0 + 60_000,
    queuedTick: null,
    lastTick: null,
    lastInstance: null,
    skipped: 0,
    createdAt: T0,
    updatedAt: T0 + revision,
    ...patch,
  }
}

export function scheduleContractTests(name: string, suite: Suite): void {
  const { reopen, open } = suite
  const test = groupTest(suite, scheduleMethods)

  describe(`${name} store: the schedule methods`, () => {
    test('creates a schedule once and writes it compare-and-set on the revision', async (s) => {
      expect(await s.putSchedule(scheduleRecord('a', 1), 0)).toBe(true)
      expect(await s.putSchedule(scheduleRecord('a', 1, { skipped: 9 }), 0)).toBe(false)
      expect(await s.getSchedule('a')).toEqual(scheduleRecord('a', 1))
      expect(await s.putSchedule(scheduleRecord('a', 2, { lastTick: T0 + 60_000, lastInstance: 'a@x' }), 1)).toBe(true)
      expect(await s.putSchedule(scheduleRecord('a', 2, { skipped: 5 }), 1)).toBe(false)
      const stored = await s.getSchedule('a')
      expect(stored?.revision).toBe(2)
      expect(stored?.lastInstance).toBe('a@x')
      expect(stored?.skipped).toBe(0)
      expect(await s.getSchedule('none')).toBeUndefined()
      await expect(s.putSchedule(scheduleRecord('b', 3), 0)).rejects.toThrow(/revision/)
    })

    test('lists schedules by id and deletes them', async (s) => {
      for (const id of ['b', 'a', 'c']) await s.putSchedule(scheduleRecord(id, 1), 0)
      expect((await s.listSchedules()).map((r) => r.id)).toEqual(['a', 'b', 'c'])
      expect(await s.deleteSchedule('b')).toBe(true)
      expect(await s.deleteSchedule('b')).toBe(false)
      expect((await s.listSchedules()).map((r) => r.id)).toEqual(['a', 'c'])
    })

    test('claims due schedules once, in due order, until the lease lapses or the schedule is written', async (s) => {
      await s.putSchedule(scheduleRecord('late', 1, { nextTick: T0 + 2000 }), 0)
      await s.putSchedule(scheduleRecord('early', 1, { nextTick: T0 + 1000 }), 0)
      await s.putSchedule(scheduleRecord('future', 1, { nextTick: T0 + 99_000 }), 0)
      await s.putSchedule(
        scheduleRecord('paused', 1, {
          nextTick: T0,
          definition: { ...scheduleRecord('x', 1).definition, paused: true },
        }),
        0,
      )
      await s.putSchedule(scheduleRecord('ended', 1, { nextTick: null }), 0)
      await s.putSchedule(scheduleRecord('queued', 1, { nextTick: T0 + 99_000, queuedTick: T0 + 500 }), 0)
      const now = T0 + 5000
      const first = await s.claimDueSchedules({ owner: 'p1', now, leaseUntil: now + 10_000, limit: 10 })
      expect(first.map((r) => r.id)).toEqual(['queued', 'early', 'late'])
      expect(await s.claimDueSchedules({ owner: 'p2', now, leaseUntil: now + 10_000, limit: 10 })).toEqual([])
      // Writing a schedule releases its claim.
      await s.putSchedule(scheduleRecord('early', 2, { nextTick: T0 + 1000 }), 1)
      expect(
        (await s.claimDueSchedules({ owner: 'p2', now, leaseUntil: now + 10_000, limit: 10 })).map((r) => r.id),
      ).toEqual(['early'])
      // A lapsed lease: another owner takes the rest.
      const later = now + 20_000
      expect(
        (await s.claimDueSchedules({ owner: 'p3', now: later, leaseUntil: later + 1, limit: 1 })).map((r) => r.id),
      ).toEqual(['queued'])
    })

    test('keeps schedules across close and open', async (s, store) => {
      await s.putSchedule(scheduleRecord('kept', 1), 0)
      await store.close()
      const again = await reopen(store)
      await again.open()
      open.push(again)
      expect(await scheduleMethods(again)?.getSchedule('kept')).toEqual(scheduleRecord('kept', 1))
    })
  })
}
