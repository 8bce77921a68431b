/**
 * The flow-control methods of the memory store: maps of rows. Each method runs without awaiting,
 * so it is one atomic step, as a transaction under a lock is in the SQL stores.
 */
import {
  type ActivityControl,
  type AdmitOptions,
  applyControl,
  type ControlChange,
  type FlowSlot,
  type FlowStart,
  type FlowStore,
  planAdmission,
  rateWindow,
} from '../flow-store.js'
import { uniqueRequests } from './flow-sql.js'

export function memoryFlow(check: () => void): FlowStore {
  /** Activity → holder → row. Rows are replaced, never changed in place: what is returned is a copy. */
  const queues = new Map<string, Map<string, FlowSlot>>()
  const starts = new Map<string, FlowStart[]>()
  const controls = new Map<string, ActivityControl>()
  return {
    async admitActivity(options: AdmitOptions) {
      check()
      const { activity, owner, now } = options
      const queue = queues.get(activity) ?? new Map<string, FlowSlot>()
      for (const [holder, slot] of queue) if (slot.seenAt < options.staleBefore) queue.delete(holder)
      for (const holder of options.running) {
        const slot = queue.get(holder)
        if (slot?.owner === owner) queue.set(holder, { ...slot, seenAt: now })
      }
      const requests = uniqueRequests(options.requests)
      for (const { holder, key, since } of requests) {
        const slot = queue.get(holder)
        queue.set(
          holder,
          slot?.running
            ? slot
            : slot
              ? { ...slot, owner, seenAt: now }
              : { holder, key, since, owner, running: false, seenAt: now },
        )
      }
      const window = rateWindow(options.limits)
      const kept = (starts.get(activity) ?? []).filter((start) => start.at > now - window)
      const result = planAdmission(
        [...queue.values()],
        kept,
        options.limits,
        now,
        new Set(requests.map((r) => r.holder)),
      )
      for (const holder of result.granted) {
        const slot = queue.get(holder) as FlowSlot
        queue.set(holder, { ...slot, running: true, seenAt: now })
        kept.push({ key: slot.key, at: now })
      }
      if (queue.size > 0) queues.set(activity, queue)
      else queues.delete(activity)
      if (kept.length > 0) starts.set(activity, kept)
      else starts.delete(activity)

      return { granted: [...result.granted], retryAt: result.retryAt }
    },
    async releaseActivity(activity: string, holders: readonly string[]) {
      check()
      const queue = queues.get(activity)
      if (!queue) return
      for (const holder of holders) queue.delete(holder)
      if (queue.size === 0) queues.delete(activity)
    },
    async controlActivity(activity: string, change: ControlChange, now: number) {
      check()
      const result = applyControl(controls.get(activity), activity, change, now)
      if (result.applied) controls.set(activity, result.control)
      return { control: { ...result.control }, applied: result.applied }
    },
    async listActivityControls() {
      check()
      return [...controls.values()]
        .sort((a, b) => Buffer.compare(Buffer.from(a.activity), Buffer.from(b.activity)))
        .map((control) => ({ ...control }))
    },
  }
}
