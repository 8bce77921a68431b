/**
 * The commit loop: every change of an instance is decided on its current record and committed with a
 * compare-and-set on the revision before it takes effect; then the transition is logged and emitted,
 * its outbox published and its new timers and tasks scheduled.
 */
import { backoffDelay, sleep } from '@backplane/internal'
import { childEndRow } from '../child-messages.js'
import { storeUnavailable, WorkflowError } from '../errors.js'
import type { Commit, CommitResult, InstanceRecord, OutboxRecord } from '../store.js'
import { nextDue } from '../store.js'
import { failInstance, type Step, type StepResult } from '../transition.js'
import type { EngineContext } from './context.js'
import type { Instances } from './instances.js'
import { measureStart, recordCommit, recordTransition } from './metrics.js'
import { activeCarrier, traceNewWork, traceOutbox } from './trace-context.js'

/**
 * Losing a compare-and-set means another process committed to this instance first. Retrying at
 * once loses again while that process works through a queue of sends (it commits from its cache,
 * back to back), so each retry waits a little longer, at random: the gaps between the other
 * side's commits are where a retry wins. Real time, not the engine's clock: this is contention
 * between processes, which a test clock does not drive.
 */
const CONFLICT_PATIENCE_MS = 30_000
const conflictDelay = (attempt: number): number =>
  backoffDelay({ initialDelay: 1, maxDelay: 100, factor: 2, jitter: 'full' }, attempt + 1)

/** What `mutate`'s `decide` returns: a step (or a bare new record) to commit, or a result without a commit. */
export type Decision<T> =
  | {
      readonly commit: Step
      readonly eventId?: string | undefined
      readonly done: (record: InstanceRecord) => T
      readonly duplicate?: () => Promise<T>
    }
  | { readonly result: T }

/** What a commit sets off in the other parts of the engine. */
export interface AfterCommitHooks {
  /** Arms the timers and queues the tasks of a running instance this engine owns. */
  scheduleWork(record: InstanceRecord): void
  publishOutbox(messages: readonly OutboxRecord[]): Promise<void>
}

export interface Commits {
  /**
   * Loads the instance (cache first), computes a decision and commits it with a compare-and-set on
   * the revision; on a conflict (another process committed first) reloads and computes again.
   */
  mutate<T>(id: string, decide: (record: InstanceRecord | undefined) => Decision<T>): Promise<T>
  /** The decision for a step computed in the background (timer, activity result): failures fail the instance. */
  decideBackground(record: InstanceRecord, result: StepResult, event: unknown, activity?: string): Decision<void>
}

export function createCommits(ctx: EngineContext, instances: Instances, hooks: AfterCommitHooks): Commits {
  const { store, clock, logger, events, owner, worker, owned, waiters, opts } = ctx
  const { cache, load, remember, serial } = instances

  const ownerFor = (step: Step, replaced: boolean): string | null | undefined => {
    if (nextDue(step.instance) === null) return null
    if (!replaced) return undefined
    return worker ? owner : null
  }

  const storeCommit = async (commit: Commit): Promise<CommitResult> => {
    const started = measureStart()
    try {
      const result = await store.commit(commit)
      recordCommit(started, result.status)
      return result
    } catch (error) {
      recordCommit(started, 'error')
      throw storeUnavailable(store.kind, 'commit', error, commit.instance.id)
    }
  }

  const mutate = <T>(id: string, decide: (record: InstanceRecord | undefined) => Decision<T>): Promise<T> =>
    // `serial` runs this in the caller's async context (a request's span, a consumer's, a timer's or
    // an activity's trace): what the step creates carries that trace on.
    serial(id, async () => {
      const carrier = activeCarrier()
      const started = Date.now()
      for (let attempt = 0; ; attempt++) {
        const record = attempt === 0 && cache.has(id) ? cache.get(id) : await load(id)
        const decision = decide(record)
        if ('result' in decision) return decision.result
        const step = decision.commit
        const instance = carrier ? traceNewWork(step.instance, record, carrier) : step.instance
        const now = clock.now()
        const ended = record?.status !== instance.status ? childEndRow(instance, now) : undefined
        const outbox = ended ? [...step.outbox, ended] : step.outbox
        const traced: Step = { ...step, instance, outbox: carrier ? traceOutbox(outbox, carrier) : outbox }
        const commit: Commit = {
          instance,
          expectedRevision: record ? record.revision : 0,
          owner: ownerFor(step, step.workReplaced),
          history: [traced.history],
          eventId: decision.eventId,
          outbox: traced.outbox,
          outboxHoldUntil: now + opts.leaseTimeout,
        }
        const result = await storeCommit(commit)
        if (result.status === 'committed') {
          recordTransition(instance, traced.history)
          remember(instance)
          if (commit.owner === owner) owned.add(id)
          else if (commit.owner === null) owned.delete(id)
          afterCommit(instance, traced)
          return decision.done(instance)
        }
        if (result.status === 'duplicate' && decision.duplicate) return decision.duplicate()
        if (result.status === 'exists') {
          throw new WorkflowError('WORKFLOW_DUPLICATE_INSTANCE', `an instance with id ${id} already exists`, {
            instanceId: id,
          })
        }
        cache.delete(id)
        if (Date.now() - started >= CONFLICT_PATIENCE_MS) {
          throw new WorkflowError(
            'WORKFLOW_CONFLICT',
            `instance ${id} kept changing under this engine (${attempt + 1} conflicts in ${Date.now() - started} ms)`,
            { instanceId: id },
          )
        }
        await sleep(conflictDelay(attempt), undefined, true)
      }
    })

  const afterCommit = (record: InstanceRecord, step: Step | undefined) => {
    if (step) {
      const { history } = step
      logger.debug(
        { instance: record.id, from: history.from, to: history.to, kind: history.kind },
        'workflow transition',
      )
      if (events.listenerCount('transition') > 0) {
        events.emit('transition', {
          instanceId: record.id,
          machine: record.machine,
          version: record.version,
          kind: history.kind,
          event: history.event,
          from: history.from,
          to: history.to,
          status: record.status,
          revision: record.revision,
        })
      }
      if (history.kind !== 'failed' && record.status === 'done')
        events.emit('instanceDone', { instanceId: record.id, machine: record.machine, state: record.state })
      if (history.kind === 'failed' && record.failure) {
        logger.warn({ instance: record.id, failure: record.failure.message }, 'workflow instance failed')
        events.emit('instanceFailed', {
          instanceId: record.id,
          machine: record.machine,
          state: record.state,
          failure: { ...record.failure, at: new Date(record.failure.at) },
        })
      }
      // Without a broker the outbox holds only the engine's own rows (children's starts and ends).
      if (step.outbox.length > 0 && worker) ctx.track(hooks.publishOutbox(step.outbox))
    }
    if (worker && owned.has(record.id) && !ctx.closing) hooks.scheduleWork(record)
    const list = waiters.get(record.id)
    if (list) for (const wake of list) wake()
  }

  const failDecision = (
    record: InstanceRecord,
    error: WorkflowError,
    event: unknown,
    activity?: string,
  ): Decision<void> => ({
    commit: failInstance(
      record,
      { message: error.message, code: error.code, activity, at: clock.now() },
      event,
      clock.now(),
    ),
    done: () => undefined,
  })

  const decideBackground = (
    record: InstanceRecord,
    result: StepResult,
    event: unknown,
    activity?: string,
  ): Decision<void> => {
    if (result.type === 'step') return { commit: result, done: () => undefined }
    if (result.type === 'error') return failDecision(record, result.error, event, activity)
    return { result: undefined }
  }

  return { mutate, decideBackground }
}
