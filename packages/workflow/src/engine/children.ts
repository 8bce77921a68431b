/**
 * Spawned children, engine side: the outbox rows a parent and its children leave for each other
 * (see child-messages.ts) are carried out here instead of going to a broker. Each is idempotent,
 * so a row handled twice (a crash before its removal, two engines after a lease expired) does
 * nothing more the second time; the compare-and-set on the parent makes it move on exactly once.
 */
import {
  CANCEL_TOPIC,
  type CancelMessage,
  CHILD_END_TOPIC,
  type ChildEndMessage,
  SPAWN_TOPIC,
  type SpawnMessage,
} from '../child-messages.js'
import { cancelStep } from '../control-steps.js'
import { WorkflowError } from '../errors.js'
import type { AnyMachine } from '../machine.js'
import type { InstanceRecord, OutboxRecord } from '../store.js'
import { initialStep, type TransitionInput, transition } from '../transition.js'
import type { Commits } from './commits.js'
import type { EngineContext } from './context.js'

export interface Children {
  /** Carries out one internal outbox row. */
  handle(message: OutboxRecord): Promise<void>
  /** Cancels an instance (`done` and `cancelled` ones stay as they are); false when there is none. */
  cancel(instanceId: string, reason: string): Promise<InstanceRecord | undefined>
}

export function createChildren(ctx: EngineContext, commits: Commits): Children {
  const { store, clock, machines, latest } = ctx
  const { mutate, decideBackground } = commits

  const machineOf = (id: string, version: number | undefined): AnyMachine => {
    const found = version === undefined ? latest.get(id) : machines.get(id)?.get(version)
    if (!found)
      throw new WorkflowError(
        'WORKFLOW_UNKNOWN_MACHINE',
        `a spawn asks for machine ${id}${version === undefined ? '' : ` v${version}`}, which this engine does not have registered`,
      )
    return found
  }

  /** Moves the parent on with its child's end; nothing when the parent no longer waits for it. */
  const tellParent = (parent: SpawnMessage['parent'], input: TransitionInput, event: unknown) =>
    mutate<void>(parent.id, (record) => {
      if (!record) return { result: undefined }
      const result = transition(ctx.machineFor(record), record, input, clock.now())
      return decideBackground(record, result, event)
    })

  /** Whether the parent still waits for this child (running, with the task that spawned exactly it). */
  const parentWaits = async (message: SpawnMessage): Promise<boolean> => {
    const parent = await store.load(message.parent.id)
    return (
      parent?.status === 'running' &&
      parent.tasks.some((t) => t.id === message.parent.taskId && t.child?.id === message.id)
    )
  }

  const failSpawn = (message: SpawnMessage, machine: AnyMachine, error: { message: string; code?: string }) => {
    const state = machine.config.initial
    return tellParent(
      message.parent,
      { kind: 'child.error', taskId: message.parent.taskId, childId: message.id, state, error },
      { type: 'child.error', machine: machine.id, instanceId: message.id, state, error },
    )
  }

  const spawn = async (message: SpawnMessage) => {
    const machine = machineOf(message.machine, message.version)
    let refused: WorkflowError | undefined
    let taken: InstanceRecord | undefined
    try {
      await mutate<void>(message.id, (record) => {
        refused = undefined
        taken = undefined
        if (record) {
          // Started before by this very row (a repeat), or the id belongs to another instance.
          const same = record.parent?.id === message.parent.id && record.parent.taskId === message.parent.taskId
          if (!same) taken = record
          return { result: undefined }
        }
        const step = initialStep(machine, message.id, message.input, clock.now())
        if (step.type === 'error') {
          refused = step.error
          return { result: undefined }
        }
        if (step.type !== 'step') return { result: undefined }
        const instance = { ...step.instance, parent: message.parent }
        return { commit: { ...step, instance }, done: () => undefined }
      })
    } catch (error) {
      // Created by another engine between our read and our commit: the same row, handled there.
      if (!WorkflowError.is(error, 'WORKFLOW_DUPLICATE_INSTANCE')) throw error
    }
    if (taken) {
      await failSpawn(message, machine, {
        message: `the child id ${message.id} is taken by another instance (${taken.machine}, ${taken.status})`,
        code: 'WORKFLOW_DUPLICATE_INSTANCE',
      })
      return
    }
    // The child could not even start (its input fails its schema): the parent hears it as a failure.
    if (refused) return failSpawn(message, machine, { message: refused.message, code: refused.code })
    // The parent may have moved on (or been cancelled) before this row ran: its cancel found no
    // child then, so the child is cancelled here. Checked after the commit, so no cancel slips between.
    if (message.onParentExit === 'cancel' && !(await parentWaits(message)))
      await cancel(message.id, `its parent ${message.parent.id} no longer waits for it`, { onlyRunning: true })
  }

  const childEnded = async (message: ChildEndMessage) => {
    const child = await store.load(message.child)
    if (!child || child.status === 'running') return
    const taskId = message.parent.taskId
    const childId = child.id
    const about = { machine: child.machine, instanceId: child.id, state: child.state }
    if (child.status === 'done') {
      await tellParent(
        message.parent,
        { kind: 'child.done', taskId, childId, state: child.state, output: child.context },
        { type: 'child.done', ...about, output: child.context },
      )
      return
    }
    const error =
      child.status === 'cancelled'
        ? { message: `child ${child.id} was cancelled`, code: 'WORKFLOW_CANCELLED' }
        : { message: child.failure?.message ?? `child ${child.id} failed`, code: child.failure?.code }
    await tellParent(
      message.parent,
      { kind: 'child.error', taskId, childId, state: child.state, error },
      {
        type: 'child.error',
        ...about,
        error,
      },
    )
  }

  /**
   * `onlyRunning`: a cancel a parent asks for leaves a failed child failed (its failure stays
   * visible); `engine.cancel` ends a failed instance too.
   */
  const cancel = (instanceId: string, reason: string, { onlyRunning = false } = {}) =>
    mutate<InstanceRecord | undefined>(instanceId, (record) => {
      if (!record) return { result: undefined }
      if (record.status === 'done' || record.status === 'cancelled') return { result: record }
      if (onlyRunning && record.status !== 'running') return { result: record }
      return { commit: cancelStep(record, reason, clock.now()), done: (r) => r }
    })

  return {
    cancel,
    async handle(message) {
      if (message.topic === SPAWN_TOPIC) await spawn(message.data as SpawnMessage)
      else if (message.topic === CHILD_END_TOPIC) await childEnded(message.data as ChildEndMessage)
      else if (message.topic === CANCEL_TOPIC) {
        const { id, reason } = message.data as CancelMessage
        await cancel(id, reason, { onlyRunning: true })
      }
    },
  }
}
