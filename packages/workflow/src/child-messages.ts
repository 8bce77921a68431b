/**
 * What a parent and its spawned children tell each other, as outbox rows: committed with the
 * transition that causes them (so a crash loses none), handed to the engine instead of a broker,
 * and removed once done. Each is idempotent: a start of an id that exists starts nothing, an end
 * whose task is no longer pending changes nothing, a cancel of an instance that ended does nothing.
 */
import type { OutboxMessage } from './machine.js'
import type { InstanceRecord, OutboxRecord, TaskRecord } from './store.js'

const PREFIX = '@backplane/workflow:'
export const SPAWN_TOPIC = `${PREFIX}spawn`
export const CHILD_END_TOPIC = `${PREFIX}child-end`
export const CANCEL_TOPIC = `${PREFIX}cancel`

export const isInternalTopic = (topic: string): boolean => topic.startsWith(PREFIX)

export interface SpawnMessage {
  readonly id: string
  readonly machine: string
  readonly version?: number | undefined
  readonly input: unknown
  readonly parent: { readonly id: string; readonly taskId: string }
  readonly onParentExit: 'cancel' | 'abandon'
}

export interface ChildEndMessage {
  readonly parent: { readonly id: string; readonly taskId: string }
  readonly child: string
}

export interface CancelMessage {
  readonly id: string
  readonly reason: string
}

/** Starts the children of the tasks a state just created. */
export function spawnMessages(instanceId: string, tasks: readonly TaskRecord[]): OutboxMessage[] {
  const messages: OutboxMessage[] = []
  for (const task of tasks) {
    if (!task.child) continue
    const data: SpawnMessage = {
      id: task.child.id,
      machine: task.child.machine,
      version: task.child.version,
      input: task.input,
      parent: { id: instanceId, taskId: task.id },
      onParentExit: task.child.onParentExit,
    }
    messages.push({ topic: SPAWN_TOPIC, data })
  }
  return messages
}

/** Cancels the children of `tasks` still waited for whose spawn says so (the parent left the state, or ended). */
export function cancelMessages(tasks: readonly TaskRecord[], reason: string): OutboxMessage[] {
  const messages: OutboxMessage[] = []
  for (const task of tasks) {
    if (task.child?.onParentExit !== 'cancel') continue
    const data: CancelMessage = { id: task.child.id, reason }
    messages.push({ topic: CANCEL_TOPIC, data })
  }
  return messages
}

/** The row a child's last commit leaves for its parent (added by the commit loop). */
export function childEndRow(instance: InstanceRecord, now: number): OutboxRecord | undefined {
  if (!instance.parent || instance.status === 'running') return undefined
  const data: ChildEndMessage = { parent: instance.parent, child: instance.id }
  return {
    id: `${instance.id}/${instance.revision}/end`,
    instanceId: instance.id,
    topic: CHILD_END_TOPIC,
    data,
    createdAt: now,
  }
}
