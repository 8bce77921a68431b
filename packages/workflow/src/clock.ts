import { DURATION_EXPECTED, type Duration, parseDuration } from '@backplane/internal'
import { WorkflowError } from './errors.js'

/** Time for the engine: deadlines, backoffs and timeouts all go through it, so tests can drive time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms)
    handle.unref?.()
    return handle
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/** A clock that moves only when told: `advance(ms)` runs every callback that falls due, in time order. */
export interface ManualClock extends Clock {
  /**
   * Moves time forward by `duration` (ms or a duration string: `'30m'`), running the callbacks that
   * fall due in time order, each at its own time, and letting the promises they start settle.
   */
  advance(duration: Duration): Promise<void>
  /** Sets the time (ms since the epoch or a Date; forward only), as `advance`. */
  set(time: number | Date): Promise<void>
  /** Callbacks waiting. */
  readonly pending: number
}

export function manualClock(start: number = Date.UTC(2030, 0, 1)): ManualClock {
  let now = start
  let nextId = 1
  const entries = new Map<number, { at: number; callback: () => void }>()
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve))
  }
  const clock: ManualClock = {
    now: () => now,
    setTimeout(callback, ms) {
      const id = nextId++
      entries.set(id, { at: now + Math.max(0, ms), callback })
      return id
    },
    clearTimeout(handle) {
      entries.delete(handle as number)
    },
    async advance(duration) {
      const ms = parseDuration(duration)
      if (ms === undefined || ms < 0)
        throw new WorkflowError(
          'WORKFLOW_INVALID_OPTIONS',
          `clock.advance: expected ${DURATION_EXPECTED}, got ${JSON.stringify(duration)}`,
        )
      await clock.set(now + ms)
    },
    async set(at) {
      const time = at instanceof Date ? at.getTime() : at
      await settle()
      for (;;) {
        let due: [number, { at: number; callback: () => void }] | undefined
        for (const entry of entries) if (entry[1].at <= time && (!due || entry[1].at < due[1].at)) due = entry
        if (!due) break
        entries.delete(due[0])
        now = Math.max(now, due[1].at)
        due[1].callback()
        await settle()
      }
      now = Math.max(now, time)
      await settle()
    },
    get pending() {
      return entries.size
    },
  }
  return clock
}
