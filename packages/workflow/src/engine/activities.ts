/**
 * The activity runner: runs each due activity attempt (at most `concurrency` at once, each under its
 * timeout and the engine's abort), in a span that is a child of the transition that committed the
 * call, then commits its outcome: the result, a retry after a backoff, or the error.
 */
import { backoffDelay, parseDuration, sleep } from '@backplane/internal'
import { context, isSpanContextValid, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { ActivityTimeoutError, NonRetryableError } from '../activity-errors.js'
import { rescheduleTask } from '../control-steps.js'
import { WorkflowError } from '../errors.js'
import type { ActivityErrorInfo, AnyMachine } from '../machine.js'
import { type ResolvedRetryPolicy, resolveRetryPolicy } from '../retry.js'
import type { InstanceRecord } from '../store.js'
import { stateOf, transition } from '../transition.js'
import type { ActivityContext, EngineEvents } from '../types.js'
import type { Commits } from './commits.js'
import { type EngineContext, MAX_TIMEOUT } from './context.js'
import type { FlowGate, Ticket } from './flow.js'
import type { Instances } from './instances.js'
import { measureStart, recordActivityAttempt } from './metrics.js'
import type { Scheduled } from './scheduler.js'

const TRACER = '@backplane/workflow'

export interface ActivityRunner {
  /** Runs one attempt of a task and commits its outcome (nothing when it is no longer pending here). */
  runTask(item: Scheduled): Promise<void>
  /** Attempts running now, by instance and task id, with the controller that aborts each. */
  readonly running: ReadonlyMap<string, AbortController>
}

function errorInfo(error: unknown, attempts: number): ActivityErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return {
      name: error.name,
      message: error.message,
      code: typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
      attempts,
    }
  }
  return { name: 'Error', message: String(error), attempts }
}

/** Whether the retry policy lets this error be tried again (attempts left aside). */
function retryable(error: unknown, retry: ResolvedRetryPolicy): boolean {
  const info = errorInfo(error, 0)
  return (
    !NonRetryableError.is(error) &&
    !retry.nonRetryable.includes(info.name) &&
    !(info.code !== undefined && retry.nonRetryable.includes(info.code))
  )
}

export function createActivityRunner(
  ctx: EngineContext,
  instances: Instances,
  commits: Commits,
  gate: FlowGate,
  retryLater: (item: Scheduled, error: unknown) => void,
): ActivityRunner {
  const { clock, logger, events, activities, owned, opts } = ctx
  const { cache, load } = instances
  const { mutate, decideBackground } = commits
  const running = new Map<string, AbortController>()
  let activeActivities = 0
  const activityQueue: (() => void)[] = []

  const acquire = (): Promise<void> => {
    if (activeActivities < opts.concurrency) {
      activeActivities++
      return Promise.resolve()
    }
    return new Promise((resolve) => activityQueue.push(resolve))
  }
  const release = () => {
    const next = activityQueue.shift()
    if (next) next()
    else activeActivities--
  }

  const policyFor = (
    machine: AnyMachine,
    stateName: string,
    activity: string,
  ): { retry: ResolvedRetryPolicy; timeout: number } => {
    const entry = activities.get(activity)
    const invoke = stateOf(machine, stateName)?.invoke
    const retry = resolveRetryPolicy(opts.retry, entry?.retry, invoke?.retry)
    const timeout = parseDuration(invoke?.timeout ?? entry?.timeout ?? opts.activityTimeout) ?? opts.activityTimeout
    return { retry, timeout }
  }

  const runTask = async (item: Scheduled) => {
    const { instanceId, itemId: taskId } = item
    const runKey = `${instanceId}\u0000${taskId}`
    if (running.has(runKey) || ctx.closing) return
    let record: InstanceRecord | undefined
    try {
      record = cache.get(instanceId) ?? (await load(instanceId))
    } catch (error) {
      retryLater({ at: 0, instanceId, kind: 'task', itemId: taskId, attempt: 0, trace: item.trace }, error)
      return
    }
    const task = record?.tasks.find((t) => t.id === taskId)
    if (!record || !task || record.status !== 'running' || !owned.has(instanceId)) return
    let machine: AnyMachine
    try {
      machine = ctx.machineFor(record)
    } catch (error) {
      ctx.reportError(error, 'workflow: cannot run an activity')
      return
    }
    const entry = activities.get(task.activity)
    const { retry, timeout } = policyFor(machine, record.state, task.activity)
    // Limits, the breaker and a pause hold the attempt here without spending it.
    let ticket: Ticket | undefined
    try {
      ticket = await gate.enter({
        activity: task.activity,
        // Task ids are revisions, unique per instance (and without a slash): one holder per call store-wide.
        holder: `${instanceId}/${task.id}`,
        instanceId,
        since: task.runAt,
        input: task.input,
      })
    } catch (error) {
      await commitOutcome(instanceId, taskId, task.attempt, task.key, retry, { ok: false, error })
      return
    }
    if (!ticket) return
    // It may have waited: run it only if it is still this engine's to run.
    const current = cache.get(instanceId)
    if (
      ctx.closing ||
      running.has(runKey) ||
      !owned.has(instanceId) ||
      (current && (current.status !== 'running' || !current.tasks.some((t) => t.id === taskId)))
    ) {
      await gate.leave(ticket, 'none')
      return
    }
    const controller = new AbortController()
    running.set(runKey, controller)
    await acquire()
    let outcome: { ok: true; output: unknown } | { ok: false; error: unknown }
    let timeoutHandle: unknown
    let span: Span | undefined
    let spanContext = context.active()
    let attemptStarted = -1
    try {
      if (ctx.closing) return
      attemptStarted = measureStart()
      // A child of the transition that committed the call (the active context: see the scheduler's dispatch); the
      // transition its outcome causes continues from it.
      span = trace.getTracer(TRACER).startSpan(`activity ${task.activity}`, {
        kind: SpanKind.INTERNAL,
        attributes: {
          'workflow.instance.id': instanceId,
          'workflow.machine': record.machine,
          'workflow.machine.version': record.version,
          'workflow.state': record.state,
          'workflow.activity': task.activity,
          'workflow.activity.attempt': task.attempt,
          'workflow.activity.idempotency_key': task.key,
        },
      })
      // Without an SDK and without a trace the span is an invalid no-op one: nothing to make active.
      if (isSpanContextValid(span.spanContext())) spanContext = trace.setSpan(spanContext, span)
      if (!entry) throw new NonRetryableError(`activity ${task.activity} is not registered in this engine`)
      const activityContext: ActivityContext = {
        idempotencyKey: task.key,
        attempt: task.attempt,
        instanceId,
        machine: record.machine,
        activity: task.activity,
        signal: controller.signal,
      }
      // Settles when the attempt times out or the engine closes, whatever the activity does with its signal.
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
      })
      aborted.catch(() => undefined)
      timeoutHandle = clock.setTimeout(
        () => controller.abort(new ActivityTimeoutError(task.activity, timeout)),
        Math.min(MAX_TIMEOUT, timeout),
      )
      const output = await Promise.race([
        context.with(spanContext, async () => entry.run(task.input, activityContext)),
        aborted,
      ])
      JSON.stringify(output ?? null)
      outcome = { ok: true, output: output ?? null }
    } catch (error) {
      outcome = { ok: false, error }
    } finally {
      if (timeoutHandle !== undefined) clock.clearTimeout(timeoutHandle)
      release()
      running.delete(runKey)
    }
    if (span) {
      if (!outcome.ok) {
        const error = outcome.error
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
        span.setAttribute('error.type', error instanceof Error ? error.name : 'Error')
        if (error instanceof Error) span.recordException(error)
      }
      span.end()
    }
    // Stopping: the result is not committed; the task runs again after the restart (at least once).
    if (ctx.closing && controller.signal.aborted) {
      await gate.leave(ticket, 'none')
      return
    }
    recordActivityAttempt(attemptStarted, record.machine, task.activity, outcome)
    await gate.leave(ticket, outcome.ok ? 'success' : retryable(outcome.error, retry) ? 'failure' : 'answered')
    await context.with(spanContext, () => commitOutcome(instanceId, taskId, task.attempt, task.key, retry, outcome))
  }

  const commitOutcome = async (
    instanceId: string,
    taskId: string,
    attempt: number,
    key: string,
    retry: ResolvedRetryPolicy,
    outcome: { ok: true; output: unknown } | { ok: false; error: unknown },
  ): Promise<void> => {
    let failedEvent: Parameters<EngineEvents['activityFailed']>[0] | undefined
    for (let tries = 0; ; tries++) {
      try {
        await mutate<void>(instanceId, (record) => {
          failedEvent = undefined
          if (!record) return { result: undefined }
          const task = record.tasks.find((t) => t.id === taskId)
          if (!task || record.status !== 'running') return { result: undefined }
          const machine = ctx.machineFor(record)
          const now = clock.now()
          if (outcome.ok) {
            const result = transition(machine, record, { kind: 'activity.done', taskId, output: outcome.output }, now)
            return decideBackground(
              record,
              result,
              { type: 'activity.done', activity: task.activity, output: outcome.output },
              task.activity,
            )
          }
          const info = errorInfo(outcome.error, task.attempt)
          const again = retryable(outcome.error, retry) && task.attempt < retry.maxAttempts
          const runAt = again ? now + backoffDelay(retry, task.attempt) : undefined
          failedEvent = {
            instanceId,
            activity: task.activity,
            idempotencyKey: task.key,
            attempt: task.attempt,
            error: info,
            willRetry: again,
            retryAt: runAt === undefined ? undefined : new Date(runAt),
          }
          if (runAt !== undefined) {
            return { commit: rescheduleTask(record, taskId, runAt, info, now), done: () => undefined }
          }
          const result = transition(machine, record, { kind: 'activity.error', taskId, error: info }, now)
          return decideBackground(
            record,
            result,
            { type: 'activity.error', activity: task.activity, error: info },
            task.activity,
          )
        })
        if (failedEvent) {
          logger.warn(
            {
              instance: instanceId,
              activity: failedEvent.activity,
              attempt,
              key,
              err: failedEvent.error.message,
              willRetry: failedEvent.willRetry,
            },
            'workflow activity failed',
          )
          events.emit('activityFailed', failedEvent)
        }
        return
      } catch (error) {
        if (
          WorkflowError.is(error, 'WORKFLOW_UNKNOWN_VERSION') ||
          WorkflowError.is(error, 'WORKFLOW_UNKNOWN_MACHINE')
        ) {
          ctx.reportError(error, 'workflow: cannot commit an activity result')
          return
        }
        ctx.reportError(error, `workflow: the result of ${key} could not be committed; retrying`)
        if (ctx.closing) return
        await sleep(Math.min(5000, 250 * 2 ** Math.min(tries, 5)))
        if (ctx.closing) return
      }
    }
  }

  return { runTask, running }
}
