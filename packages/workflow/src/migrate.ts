/** Moving an instance to a later version of its machine through the `migrations` hooks. */

import { cancelMessages, spawnMessages } from './child-messages.js'
import { WorkflowError } from './errors.js'
import type { AnyMachine } from './machine.js'
import type { InstanceRecord } from './store.js'
import { call, checkContext, StepError, type StepResult, stateOf, toOutbox, workOf } from './transition.js'

/**
 * Moves an instance from `from` to `to` (a later version of the same machine) through the `migrations`
 * hooks of every version in between. The pending task is kept when the new state invokes the same
 * activity; timers are kept when the new state has the same delay; what the new state needs and
 * lacks is armed now. Entry actions are not run again.
 */
export function migrateStep(
  versions: ReadonlyMap<number, AnyMachine>,
  instance: InstanceRecord,
  toVersion: number,
  now: number,
): StepResult {
  const target = versions.get(toVersion)
  if (!target) {
    return {
      type: 'error',
      error: new WorkflowError('WORKFLOW_UNKNOWN_VERSION', `${instance.machine} has no version ${toVersion}`, {
        instanceId: instance.id,
      }),
    }
  }
  try {
    let snapshot: { state: string; context: unknown } = { state: instance.state, context: instance.context }
    let current = instance.version
    while (current < toVersion) {
      // The furthest version up to `toVersion` with a hook from `current`; else one step without a hook.
      let next = current + 1
      let hook: ((from: { state: string; context: unknown }) => { state: string; context: unknown }) | undefined
      for (let version = toVersion; version > current; version--) {
        const candidate = versions.get(version)?.config.migrations?.[current]
        if (candidate) {
          next = version
          hook = candidate as typeof hook
          break
        }
      }
      const machine = versions.get(next)
      if (!machine) {
        current = next
        continue
      }
      if (hook) {
        const from = snapshot
        const apply = hook
        snapshot = call(instance.id, `migrations[${current}] hook of v${next}`, () => apply(from))
        if (typeof snapshot?.state !== 'string' || !stateOf(machine, snapshot.state)) {
          throw new StepError(
            new WorkflowError(
              'WORKFLOW_MIGRATION_FAILED',
              `the migrations[${current}] hook of ${instance.machine} v${next} returned state ${JSON.stringify(snapshot?.state)}, which v${next} does not have`,
              { instanceId: instance.id },
            ),
          )
        }
      } else if (!stateOf(machine, snapshot.state)) {
        throw new StepError(
          new WorkflowError(
            'WORKFLOW_MIGRATION_FAILED',
            `${instance.machine} v${next} has no state ${snapshot.state} and no migrations[${current}] hook to move instances to it`,
            { instanceId: instance.id },
          ),
        )
      }
      current = next
    }
    const context = checkContext(target, instance.id, snapshot.context)
    const revision = instance.revision + 1
    const state = stateOf(target, snapshot.state)
    const wanted = workOf(target, instance.id, snapshot.state, context, revision, now)
    const timers = wanted.timers.map(
      (timer) => instance.timers.find((old) => old.delay === timer.delay && snapshot.state === instance.state) ?? timer,
    )
    const tasks = wanted.tasks.map(
      (task) =>
        instance.tasks.find((old) => old.activity === task.activity && snapshot.state === instance.state) ?? task,
    )
    return {
      type: 'step',
      instance: {
        ...instance,
        version: toVersion,
        state: snapshot.state,
        context,
        status: (state?.type === 'final' ? 'done' : instance.status) as InstanceRecord['status'],
        revision,
        updatedAt: now,
        timers,
        tasks,
      },
      history: {
        instanceId: instance.id,
        seq: revision,
        at: now,
        kind: 'migrate',
        event: { type: 'migrate', from: instance.version, to: toVersion },
        from: instance.state,
        to: snapshot.state,
      },
      outbox: toOutbox(
        instance.id,
        revision,
        [
          ...cancelMessages(
            instance.tasks.filter((old) => !tasks.includes(old)),
            `its parent ${instance.id} was migrated out of state ${instance.state}`,
          ),
          ...spawnMessages(
            instance.id,
            tasks.filter((task) => !instance.tasks.includes(task)),
          ),
        ],
        now,
      ),
      workReplaced: true,
    }
  } catch (error) {
    if (error instanceof StepError) return { type: 'error', error: error.error }
    throw error
  }
}
