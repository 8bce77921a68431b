/**
 * The engine's metrics, every instrument made here (the catalogue is the README's `## Metrics`
 * table). The engine's parts call the record functions below; with no meter provider registered
 * they return at once: no clock read, no attribute object.
 */
import { lazyInstruments } from '@backplane/internal'
import { ActivityTimeoutError } from '../activity-errors.js'
import type { Clock } from '../clock.js'
import type { CommitResult, HistoryRecord, InstanceRecord } from '../store.js'
import { observeInstanceCounts } from './instance-counts.js'

/** Seconds, from a few ms up to the minutes an engine that has fallen behind shows. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
/** Seconds: OpenTelemetry's recommended boundaries for operation durations, stretched to a minute. */
const ACTIVITY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60]
/** Seconds: a group commit takes a few ms on SQLite and PostgreSQL; a store in trouble, seconds. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export const workflowMetrics = lazyInstruments('@backplane/workflow', (meter) => {
  const instances = meter.createObservableGauge('backplane.workflow.instances', {
    unit: '{instance}',
    description: 'Running and failed instances in the store, by machine, state and status',
  })
  instances.addCallback(observeInstanceCounts)
  return {
    transitions: meter.createCounter('backplane.workflow.transitions', {
      unit: '{transition}',
      description: 'Committed changes of instances (one per history row)',
    }),
    timerLag: meter.createHistogram('backplane.workflow.timer.lag', {
      unit: 's',
      description: "Time from a durable timer's due time to the commit of the transition it fired",
      advice: { explicitBucketBoundaries: LAG_BUCKETS },
    }),
    activityAttempts: meter.createCounter('backplane.workflow.activity.attempts', {
      unit: '{attempt}',
      description: 'Activity attempts run, by outcome',
    }),
    activityDuration: meter.createHistogram('backplane.workflow.activity.duration', {
      unit: 's',
      description: 'How long each activity attempt ran',
      advice: { explicitBucketBoundaries: ACTIVITY_BUCKETS },
    }),
    commitDuration: meter.createHistogram('backplane.workflow.commit.duration', {
      unit: 's',
      description: 'How long the store took to commit one transition (group commit wait included), by outcome',
      advice: { explicitBucketBoundaries: COMMIT_BUCKETS },
    }),
  }
})

/** A start time for `recordCommit`/`recordActivityAttempt`, or -1 when nothing is measured. */
export function measureStart(): number {
  return workflowMetrics().noop ? -1 : performance.now()
}

const seconds = (startedMs: number) => (performance.now() - startedMs) / 1000

/** One commit the store answered (`error`: it threw). */
export function recordCommit(started: number, outcome: CommitResult['status'] | 'error'): void {
  if (started < 0) return
  const m = workflowMetrics()
  if (!m.noop) m.commitDuration.record(seconds(started), { outcome })
}

/** One committed change of an instance: its machine, history kind, the event type (sent events only) and the status after it. */
export function recordTransition(instance: InstanceRecord, history: HistoryRecord): void {
  const m = workflowMetrics()
  if (m.noop) return
  // Only a sent event that a state accepted has a type the machine declares: anything else (an
  // ignored event's type is whatever a client sent) would make the series unbounded.
  m.transitions.add(
    1,
    history.kind === 'event'
      ? {
          'workflow.machine': instance.machine,
          'workflow.history.kind': history.kind,
          'workflow.event': (history.event as { type: string }).type,
          'workflow.status': instance.status,
        }
      : {
          'workflow.machine': instance.machine,
          'workflow.history.kind': history.kind,
          'workflow.status': instance.status,
        },
  )
}

/** A timer's transition committed: how late it is against the timer's deadline (same clock). */
export function recordTimerLag(machine: string, deadline: number, clock: Pick<Clock, 'now'>): void {
  const m = workflowMetrics()
  if (m.noop) return
  m.timerLag.record(Math.max(0, clock.now() - deadline) / 1000, { 'workflow.machine': machine })
}

export type AttemptOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown }

/** One activity attempt that ran (whatever happens to its result next). */
export function recordActivityAttempt(started: number, machine: string, activity: string, result: AttemptOutcome) {
  if (started < 0) return
  const m = workflowMetrics()
  if (m.noop) return
  const attributes = {
    'workflow.machine': machine,
    'workflow.activity': activity,
    outcome: result.ok ? 'success' : ActivityTimeoutError.is(result.error) ? 'timeout' : 'failure',
  }
  m.activityAttempts.add(1, attributes)
  m.activityDuration.record(seconds(started), attributes)
}
