/**
 * Steps that are not a machine's transitions: an ignored event, a failed attempt put back, a
 * cancel, a retry. Pure like the transitions: the engine commits what they return.
 */
import { cancelMessages, spawnMessages } from './child-messages.js'
import type { ActivityErrorInfo, WorkflowEvent } from './machine.js'
import type { InstanceRecord } from './store.js'
import { type Step, stayStep } from './transition.js'

/** Records an event the state does not accept as ignored (the `unhandledEvents: 'ignore'` option). */
export function ignoreStep(instance: InstanceRecord, event: WorkflowEvent, reason: string, now: number): Step {
  return stayStep(instance, now, 'ignored', { ...event, reason })
}

/**
 * Puts a failed attempt's task back with its next attempt number and due time. Not a transition
 * (the state stays), but a history row all the same: every revision has one, and a failed
 * attempt stays on record after the call succeeds or fails for good.
 */
export function rescheduleTask(
  instance: InstanceRecord,
  taskId: string,
  runAt: number,
  error: ActivityErrorInfo,
  now: number,
): Step {
  const task = instance.tasks.find((t) => t.id === taskId)
  const event = { type: 'activity.attempt', activity: task?.activity, attempt: task?.attempt, error, retryAt: runAt }
  return stayStep(instance, now, 'activity.attempt', event, {
    tasks: instance.tasks.map((t) => (t.id === taskId ? { ...t, attempt: t.attempt + 1, runAt, lastError: error } : t)),
  })
}

/** Cancels a running or failed instance: final, its timers and tasks dropped, its children cancelled as their spawn says. */
export function cancelStep(instance: InstanceRecord, reason: string, now: number): Step {
  const children = cancelMessages(instance.tasks, `its parent ${instance.id} was cancelled`)
  return stayStep(
    instance,
    now,
    'cancelled',
    { type: 'cancel', reason },
    { status: 'cancelled', timers: [], tasks: [] },
    children,
    true,
  )
}

/** Sets a failed instance running again: its tasks get a fresh attempt budget (same idempotency keys), due now. */
export function retryStep(instance: InstanceRecord, now: number): Step {
  const revision = instance.revision + 1
  // A child that ended badly is not run again under its id: a fresh child takes its place.
  const tasks = instance.tasks.map((task) =>
    task.child
      ? { ...task, child: { ...task.child, id: `${task.child.id}/r${revision}` } }
      : { ...task, attempt: 1, runAt: now },
  )
  const messages = [
    ...cancelMessages(instance.tasks, `its parent ${instance.id} was retried: a fresh child replaces it`),
    ...spawnMessages(instance.id, tasks),
  ]
  const event = { type: 'retry', failure: instance.failure ?? null }
  return stayStep(instance, now, 'retry', event, { status: 'running', failure: undefined, tasks }, messages, true)
}
