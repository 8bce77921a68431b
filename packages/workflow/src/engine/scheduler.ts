/**
 * The timer and task scheduler: one min-heap of due times behind a single clock timer. Due timers
 * fire through the commit loop; due tasks go to the activity runner; both run in the trace they were
 * committed in.
 */
import { context } from '@opentelemetry/api'
import { WorkflowError } from '../errors.js'
import { MinHeap } from '../heap.js'
import type { InstanceRecord } from '../store.js'
import { transition } from '../transition.js'
import type { Commits } from './commits.js'
import { type EngineContext, MAX_TIMEOUT } from './context.js'
import { recordTimerLag } from './metrics.js'
import { contextOf, type TraceCarrier } from './trace-context.js'

/** A timer or an activity attempt waiting for its time. */
export interface Scheduled {
  at: number
  instanceId: string
  kind: 'timer' | 'task'
  itemId: string
  attempt: number
  /** The trace context stored with the timer or task: its work runs in it. */
  trace: TraceCarrier | undefined
}

export interface Scheduler {
  /** Arms the timers and queues the tasks of a running instance (each item once). */
  scheduleWork(record: InstanceRecord): void
  /** Reports why `item` failed and schedules it again in 1 s. */
  retryLater(item: Scheduled, error: unknown): void
  /** Forgets everything scheduled (the lease was lost): claiming the instances again schedules it anew. */
  clear(): void
  /** Stops the clock timer and forgets everything scheduled (close). */
  stop(): void
  /** Timers and delayed attempts waiting. */
  readonly size: number
}

export function createScheduler(
  ctx: EngineContext,
  commits: Commits,
  runTask: (item: Scheduled) => Promise<void>,
): Scheduler {
  const { clock, owned } = ctx
  const { mutate, decideBackground } = commits
  const heap = new MinHeap<Scheduled>()
  const scheduledKeys = new Set<string>()
  let heapTimer: unknown
  let heapTimerAt = Number.POSITIVE_INFINITY

  const scheduleWork = (record: InstanceRecord) => {
    if (record.status !== 'running') return
    for (const timer of record.timers)
      push({
        at: timer.deadline,
        instanceId: record.id,
        kind: 'timer',
        itemId: timer.id,
        attempt: 0,
        trace: timer.trace,
      })
    for (const task of record.tasks) {
      if (task.child) continue // a spawn's task waits for its child's end, not for a time
      push({
        at: task.runAt,
        instanceId: record.id,
        kind: 'task',
        itemId: task.id,
        attempt: task.attempt,
        trace: task.trace,
      })
    }
  }

  const push = (item: Scheduled) => {
    const key = `${item.instanceId}\u0000${item.kind}\u0000${item.itemId}\u0000${item.attempt}`
    if (scheduledKeys.has(key)) return
    scheduledKeys.add(key)
    if (item.kind === 'task' && item.at <= clock.now()) {
      dispatch(item, key)
      return
    }
    heap.push(item)
    armHeapTimer()
  }

  const armHeapTimer = () => {
    const top = heap.peek()
    if (!top || ctx.closing) return
    if (heapTimer !== undefined && top.at >= heapTimerAt) return
    if (heapTimer !== undefined) clock.clearTimeout(heapTimer)
    heapTimerAt = top.at
    heapTimer = clock.setTimeout(fireDue, Math.min(MAX_TIMEOUT, Math.max(0, top.at - clock.now())))
  }

  const fireDue = () => {
    heapTimer = undefined
    heapTimerAt = Number.POSITIVE_INFINITY
    const now = clock.now()
    for (;;) {
      const top = heap.peek()
      if (!top || top.at > now) break
      heap.pop()
      dispatch(top, `${top.instanceId}\u0000${top.kind}\u0000${top.itemId}\u0000${top.attempt}`)
    }
    armHeapTimer()
  }

  const dispatch = (item: Scheduled, key: string) => {
    if (ctx.closing) return
    // In the trace the timer or task was committed in, not in the context of whoever armed the clock.
    context.with(contextOf(item.trace), () => {
      if (item.kind === 'timer') {
        ctx.track(fireTimer(item).finally(() => scheduledKeys.delete(key)))
      } else {
        ctx.track(runTask(item).finally(() => scheduledKeys.delete(key)))
      }
    })
  }

  const retryLater = (item: Scheduled, error: unknown) => {
    ctx.reportError(error, `workflow: ${item.kind} of ${item.instanceId} could not be committed; retrying in 1 s`)
    if (ctx.closing) return
    setTimeout(() => {
      if (!ctx.closing) push({ ...item, at: clock.now() })
    }, 1000).unref()
  }

  const fireTimer = async (item: Scheduled) => {
    try {
      await mutate<void>(item.instanceId, (record) => {
        if (!record || !owned.has(item.instanceId)) return { result: undefined }
        const machine = ctx.machineFor(record)
        const result = transition(machine, record, { kind: 'timer', timerId: item.itemId }, clock.now())
        const decision = decideBackground(record, result, { type: 'after', timer: item.itemId })
        // The deadline as stored: `item.at` is moved on when a failed fire is tried again.
        const deadline = record.timers.find((t) => t.id === item.itemId)?.deadline
        if (!('commit' in decision) || deadline === undefined) return decision
        return { ...decision, done: () => recordTimerLag(record.machine, deadline, clock) }
      })
    } catch (error) {
      if (WorkflowError.is(error, 'WORKFLOW_UNKNOWN_VERSION') || WorkflowError.is(error, 'WORKFLOW_UNKNOWN_MACHINE')) {
        ctx.reportError(error, 'workflow: cannot fire a timer')
        return
      }
      retryLater(item, error)
    }
  }

  return {
    scheduleWork,
    retryLater,
    clear() {
      heap.clear()
      scheduledKeys.clear()
    },
    stop() {
      if (heapTimer !== undefined) clock.clearTimeout(heapTimer)
      heap.clear()
    },
    get size() {
      return heap.size
    },
  }
}
