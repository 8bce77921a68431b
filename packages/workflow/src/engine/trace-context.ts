/**
 * Trace context carried through the store: the W3C headers of the transition that committed a timer,
 * a task or an outbox message, so the work runs (and publishes) in that trace, restarts included.
 */
import { type Context, context, propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api'
import type { InstanceRecord, OutboxRecord, TaskRecord, TimerRecord } from '../store.js'

/** W3C trace-context headers (`traceparent`, `tracestate`, …) as the registered propagator writes them. */
export type TraceCarrier = Readonly<Record<string, string>>

/** The active trace context as headers; undefined when there is nothing to carry (no context, no propagator). */
export function activeCarrier(): TraceCarrier | undefined {
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  for (const _ in carrier) return carrier
  return undefined
}

/** Where stored work runs: in the trace it was committed in, else in none (not in whatever happens to be active). */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT
}

/** Header names as written by hand may have any case: read them case-insensitively. */
export const headerGetter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    if (Object.hasOwn(carrier, key)) return carrier[key]
    for (const name in carrier) if (name.toLowerCase() === key) return carrier[name]
    return undefined
  },
}

export const hasHeader = (headers: TraceCarrier | undefined, lowerName: string): boolean => {
  if (!headers) return false
  for (const name in headers) if (name.toLowerCase() === lowerName) return true
  return false
}

/** Gives the timers and tasks the step creates (ids the previous record lacks) the trace of the transition. */
export function traceNewWork(
  instance: InstanceRecord,
  previous: InstanceRecord | undefined,
  carrier: TraceCarrier,
): InstanceRecord {
  const isNew = (item: TimerRecord | TaskRecord, old: readonly (TimerRecord | TaskRecord)[] | undefined) =>
    item.trace === undefined && !old?.some((o) => o.id === item.id)
  let timers = instance.timers
  let tasks = instance.tasks
  if (timers.some((t) => isNew(t, previous?.timers)))
    timers = timers.map((t) => (isNew(t, previous?.timers) ? { ...t, trace: carrier } : t))
  if (tasks.some((t) => isNew(t, previous?.tasks)))
    tasks = tasks.map((t) => (isNew(t, previous?.tasks) ? { ...t, trace: carrier } : t))
  return timers === instance.timers && tasks === instance.tasks ? instance : { ...instance, timers, tasks }
}

/** Adds the transition's trace context to the headers of its outbox messages that carry none of their own. */
export function traceOutbox(outbox: readonly OutboxRecord[], carrier: TraceCarrier): readonly OutboxRecord[] {
  if (outbox.length === 0) return outbox
  return outbox.map((message) =>
    hasHeader(message.headers, 'traceparent') ? message : { ...message, headers: { ...message.headers, ...carrier } },
  )
}
