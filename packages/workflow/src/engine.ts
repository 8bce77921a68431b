import { randomUUID } from 'node:crypto'
import { sleep } from '@backplane/internal'
import { NonRetryableError } from './activity-errors.js'
import { ignoreStep, retryStep } from './control-steps.js'
import { createActivityRunner } from './engine/activities.js'
import { createChildren } from './engine/children.js'
import { createCommits } from './engine/commits.js'
import { createEngineContext } from './engine/context.js'
import { createFlowGate } from './engine/flow.js'
import { addCountSource } from './engine/instance-counts.js'
import { createInstances } from './engine/instances.js'
import { createLeases } from './engine/leases.js'
import { createOutbox } from './engine/outbox.js'
import { checkId, createReadApi, publicInstance, storeRead, unknownInstance } from './engine/reads.js'
import { createScheduler } from './engine/scheduler.js'
import { createSchedules } from './engine/schedules.js'
import { storeUnavailable, WorkflowError } from './errors.js'
import type { AnyMachine } from './machine.js'
import { migrateStep } from './migrate.js'
import { type EngineOptions, parseWaitForOptions } from './options.js'
import { initialStep, transition } from './transition.js'
import type { BrokerMessage, Engine, Instance, ListenMap, SendResult, StartOptions } from './types.js'

/**
 * Creates an engine: validates the definitions, opens the store, resumes every in-flight instance
 * (timers re-armed from their deadlines, activities whose results were not committed queued again),
 * then drives them.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const ctx = createEngineContext(options)
  const { opts, store, clock, logger, owner, worker, broker, events, machines, latest, owned, waiters } = ctx

  // The parts, each over the shared context. The commit loop and the activity runner hand work to the
  // scheduler, which is built last because it fires timers through the one and tasks through the other.
  const instances = createInstances(ctx)
  const outbox = createOutbox(ctx, (message) => children.handle(message))
  const commits = createCommits(ctx, instances, {
    scheduleWork: (record) => scheduler.scheduleWork(record),
    publishOutbox: outbox.publish,
  })
  const gate = createFlowGate(ctx)
  const activityRunner = createActivityRunner(ctx, instances, commits, gate, (item, error) =>
    scheduler.retryLater(item, error),
  )
  const scheduler = createScheduler(ctx, commits, activityRunner.runTask)
  const leases = createLeases(ctx, instances, scheduler, outbox, gate)
  const schedules = createSchedules(ctx, commits)
  const children = createChildren(ctx, commits)
  const { mutate } = commits
  const { load } = instances

  let recovered = { instances: 0, ms: 0 }
  let stopCounting = () => {}
  const engine: Engine = {
    owner,
    events,
    get recovered() {
      return recovered
    },
    async start(machineRef: string | AnyMachine, startOptions: StartOptions<unknown> = {}) {
      ctx.assertOpen()
      const machineId = typeof machineRef === 'string' ? machineRef : machineRef?.id
      const versions = machines.get(machineId as string)
      if (!versions) {
        throw new WorkflowError(
          'WORKFLOW_UNKNOWN_MACHINE',
          `no machine ${JSON.stringify(machineId)} is registered (registered: ${[...machines.keys()].join(', ') || 'none'})`,
        )
      }
      const version =
        startOptions.version ??
        (typeof machineRef === 'string' ? undefined : machineRef.version) ??
        (latest.get(machineId as string) as AnyMachine).version
      const machine = versions.get(version)
      if (!machine) {
        throw new WorkflowError(
          'WORKFLOW_UNKNOWN_VERSION',
          `machine ${machineId} has no version ${version} (registered: ${[...versions.keys()].join(', ')})`,
        )
      }
      const id = startOptions.id === undefined ? randomUUID() : checkId(startOptions.id, 'start')
      const step = initialStep(machine, id, startOptions.input, clock.now())
      if (step.type !== 'step')
        throw step.type === 'error' ? step.error : new WorkflowError('WORKFLOW_INVALID_CONTEXT', `cannot start ${id}`)
      return mutate(id, (record) => {
        if (record)
          throw new WorkflowError(
            'WORKFLOW_DUPLICATE_INSTANCE',
            `an instance with id ${id} already exists (${record.machine} v${record.version}, ${record.status})`,
            { instanceId: id },
          )
        return { commit: step, done: (r) => publicInstance(r) }
      })
    },

    async send(instanceId, event, sendOptions = {}) {
      ctx.assertOpen()
      checkId(instanceId, 'send')
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string' || event.type === '') {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): expected an event object { type: 'NAME', id?, ...data }, got ${JSON.stringify(event)}`,
          { instanceId },
        )
      }
      if (event.id !== undefined && (typeof event.id !== 'string' || event.id === '')) {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): event.id must be a non-empty string when given, got ${JSON.stringify(event.id)}`,
          { instanceId },
        )
      }
      try {
        JSON.stringify(event)
      } catch (error) {
        throw new WorkflowError(
          'WORKFLOW_INVALID_EVENT',
          `send(${instanceId}): the event is not JSON-serializable: ${(error as Error).message}`,
          { instanceId, cause: error },
        )
      }
      const unhandled = sendOptions.unhandledEvents ?? opts.unhandledEvents
      const duplicate = async (): Promise<SendResult> => {
        const current = await storeRead(store, 'load', () => load(instanceId))
        if (!current) throw unknownInstance(instanceId)
        return { status: 'duplicate', instance: publicInstance(current) }
      }
      const outcome = await mutate<SendResult | { rejected: WorkflowError }>(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        const machine = ctx.machineFor(record)
        const result = transition(machine, record, { kind: 'event', event }, clock.now())
        if (result.type === 'step') {
          return {
            commit: result,
            eventId: event.id,
            done: (r) => ({ status: 'applied', instance: publicInstance(r) }),
            duplicate,
          }
        }
        if (result.type === 'error') return { result: { rejected: result.error } }
        const reason = result.type === 'not-accepted' ? result.reason : 'stale'
        if (unhandled === 'ignore') {
          return {
            commit: ignoreStep(record, event, reason, clock.now()),
            eventId: event.id,
            done: (r) => ({ status: 'ignored', instance: publicInstance(r) }),
            duplicate,
          }
        }
        return {
          result: {
            rejected: new WorkflowError(
              'WORKFLOW_EVENT_NOT_ACCEPTED',
              `event ${event.type} was not accepted by ${instanceId} (${record.machine} v${record.version}, state ${record.state}): ${reason}`,
              { instanceId },
            ),
          },
        }
      })
      if (!('rejected' in outcome)) return outcome as SendResult<never>
      // A repeated event id is acknowledged even when the state has moved on and would reject it.
      if (
        event.id !== undefined &&
        (await storeRead(store, 'hasEvent', () => store.hasEvent(instanceId, event.id as string)))
      ) {
        return (await duplicate()) as SendResult<never>
      }
      throw outcome.rejected
    },

    ...createReadApi(store),

    ...schedules.api,

    async cancel(instanceId, cancelOptions = {}) {
      ctx.assertOpen()
      checkId(instanceId, 'cancel')
      const reason = cancelOptions.reason ?? 'cancelled'
      if (typeof reason !== 'string' || reason.length > 1000)
        throw new WorkflowError(
          'WORKFLOW_INVALID_OPTIONS',
          'cancel: expected reason to be a string of at most 1000 characters',
        )
      const record = await children.cancel(instanceId, reason)
      if (!record) throw unknownInstance(instanceId)
      return publicInstance(record) as Instance<never>
    },

    async retry(instanceId) {
      ctx.assertOpen()
      checkId(instanceId, 'retry')
      return mutate(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        if (record.status !== 'failed') {
          throw new WorkflowError(
            'WORKFLOW_NOT_FAILED',
            `instance ${instanceId} is ${record.status}, not failed: only a failed instance can be retried`,
            { instanceId },
          )
        }
        ctx.machineFor(record)
        return { commit: retryStep(record, clock.now()), done: (r) => publicInstance(r) }
      }) as Promise<Instance<never>>
    },

    async migrate(instanceId, migrateOptions = {}) {
      ctx.assertOpen()
      checkId(instanceId, 'migrate')
      return mutate(instanceId, (record) => {
        if (!record) throw unknownInstance(instanceId)
        const versions = machines.get(record.machine)
        if (!versions)
          throw new WorkflowError(
            'WORKFLOW_UNKNOWN_MACHINE',
            `machine ${record.machine} of ${instanceId} is not registered`,
            { instanceId },
          )
        const to = migrateOptions.to ?? (latest.get(record.machine) as AnyMachine).version
        if (to === record.version) return { result: publicInstance(record) }
        if (to < record.version) {
          throw new WorkflowError(
            'WORKFLOW_MIGRATION_FAILED',
            `instance ${instanceId} is on v${record.version}: migrations go forward only (asked for v${to})`,
            { instanceId },
          )
        }
        const result = migrateStep(versions, record, to, clock.now())
        if (result.type === 'error') throw result.error
        if (result.type !== 'step')
          throw new WorkflowError('WORKFLOW_MIGRATION_FAILED', `cannot migrate ${instanceId}`, { instanceId })
        return { commit: result, done: (r) => publicInstance(r) }
      }) as Promise<Instance<never>>
    },

    async listen(topic, map, listenOptions = {}) {
      ctx.assertOpen()
      if (!broker)
        throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', 'listen needs a broker: pass createEngine({ broker })')
      if (typeof map !== 'function')
        throw new WorkflowError(
          'WORKFLOW_INVALID_OPTIONS',
          'listen: expected a map function (message) => ({ instance, event }) as the second argument',
        )
      const unhandled = listenOptions.unhandledEvents ?? opts.unhandledEvents
      return broker.subscribe(
        topic,
        async (message: BrokerMessage) => {
          let mapped: ReturnType<ListenMap>
          try {
            mapped = map(message)
          } catch (error) {
            throw new NonRetryableError(
              `listen(${topic}): map threw for message ${message.id}: ${(error as Error)?.message ?? error}`,
              { cause: error },
            )
          }
          if (!mapped) return
          const event = mapped.event.id === undefined ? { ...mapped.event, id: message.id } : mapped.event
          try {
            await engine.send(mapped.instance, event, { unhandledEvents: unhandled })
          } catch (error) {
            if (
              WorkflowError.is(error) &&
              [
                'WORKFLOW_UNKNOWN_INSTANCE',
                'WORKFLOW_EVENT_NOT_ACCEPTED',
                'WORKFLOW_INVALID_EVENT',
                'WORKFLOW_INVALID_CONTEXT',
                'WORKFLOW_ACTION_FAILED',
                'WORKFLOW_UNKNOWN_VERSION',
              ].includes(error.code)
            ) {
              throw new NonRetryableError(error.message, { cause: error })
            }
            throw error
          }
        },
        listenOptions.subscribe,
      )
    },

    async waitFor(instanceId, until, waitOptions = {}) {
      const { timeout: timeoutMs } = parseWaitForOptions(waitOptions)
      const started = Date.now()
      for (;;) {
        const instance = await engine.get(instanceId)
        if (until(instance as Instance<never>)) return instance as Instance<never>
        const left = timeoutMs - (Date.now() - started)
        if (left <= 0) {
          throw new WorkflowError(
            'WORKFLOW_TIMEOUT',
            `waitFor(${instanceId}) timed out after ${timeoutMs} ms (state ${instance.state}, ${instance.status})`,
            { instanceId },
          )
        }
        await new Promise<void>((resolve) => {
          let list = waiters.get(instanceId)
          if (!list) {
            list = new Set()
            waiters.set(instanceId, list)
          }
          const wake = () => {
            clearTimeout(timer)
            list?.delete(wake)
            if (list?.size === 0) waiters.delete(instanceId)
            resolve()
          }
          const timer = setTimeout(wake, Math.min(left, opts.pollInterval))
          list.add(wake)
        })
      }
    },

    pauseActivity: (activity) => gate.pause(activity),
    resumeActivity: (activity) => gate.resume(activity),
    activities: () => gate.list(),

    stats() {
      return {
        owned: owned.size,
        scheduled: scheduler.size,
        running: activityRunner.running.size,
        waiting: gate.waiting,
        cached: instances.cache.size,
      }
    },

    close() {
      if (ctx.closing) return ctx.closing
      ctx.closing = (async () => {
        stopCounting()
        leases.stop()
        schedules.stop()
        scheduler.stop()
        for (const wake of [...waiters.values()].flatMap((set) => [...set])) wake()
        const { running } = activityRunner
        const { background } = ctx
        // Attempts waiting for a limit or a breaker let go now; running ones give their slot back as they end.
        const gateClosed = gate.close()
        const deadline = Date.now() + opts.closeTimeout
        // These two waits keep the process alive (unlike the unref'd `sleep`): an app awaiting close() gets
        // its leases released and its store closed even when nothing else is pending.
        while (running.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
        for (const controller of running.values())
          controller.abort(new WorkflowError('WORKFLOW_CLOSED', 'the engine is closing'))
        while (background.size > 0 && Date.now() < deadline + 1000)
          await Promise.race([Promise.allSettled([...background]), new Promise((resolve) => setTimeout(resolve, 100))])
        const bounded = (promises: Promise<unknown>[]) => Promise.race([Promise.allSettled(promises), sleep(2000)])
        await bounded([...instances.lanes.values()])
        outbox.flushAcks()
        await bounded([...background, gateClosed])
        if (worker) await store.heartbeat(owner, 0).catch(() => undefined)
        await store.close()
      })()
      return ctx.closing
    },
  } as Engine

  // Open, resume, run.
  try {
    await store.open()
  } catch (error) {
    throw storeUnavailable(store.kind, 'open', error)
  }
  stopCounting = addCountSource({
    store,
    machines: [...machines.keys()],
    onError: (error) => ctx.reportError(error, 'workflow: could not count instances for the instances gauge'),
  })
  if (worker) {
    try {
      const started = performance.now()
      const resumed = await leases.resume()
      const ms = performance.now() - started
      if (resumed > 0) logger.info({ instances: resumed, ms: Math.round(ms) }, 'workflow instances resumed')
      recovered = { instances: resumed, ms }
      await outbox.poll()
    } catch (error) {
      stopCounting()
      await store.close().catch(() => undefined)
      throw storeUnavailable(store.kind, 'resuming instances', error)
    }
    leases.start()
    schedules.start()
  }
  return engine
}
