/**
 * The state every part of an engine shares, created once by `createEngine` and passed to each part
 * (instances, commits, scheduler, activities, outbox, leases): the resolved options, the registered
 * machines and activities, the instances this engine drives, and what `close` must wait for.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { EventEmitter } from 'eventemitter3'
import type { Clock } from '../clock.js'
import { WorkflowError } from '../errors.js'
import type { FlowLimits } from '../flow-store.js'
import type { AnyMachine, RetryPolicy } from '../machine.js'
import { type EngineOptions, type LoggerLike, parseEngineOptions, type ResolvedEngineOptions } from '../options.js'
import type { InstanceRecord, Store } from '../store.js'
import type { ActivityFunction, EngineEvents, WorkflowBroker } from '../types.js'
import { validateMachines } from '../validate.js'

/** The longest delay `setTimeout` takes (a longer one fires at once). */
export const MAX_TIMEOUT = 2 ** 31 - 1

/** A registered activity, the function form and the `{ run, retry, timeout }` form alike. */
export interface ActivityEntry {
  run: ActivityFunction
  retry: RetryPolicy | undefined
  timeout: number | string | undefined
  /** Flow limits across the store, resolved to ms; undefined when none. */
  limits: FlowLimits | undefined
  /** The key function of `perKey` limits. */
  key: ((input: unknown) => string) | undefined
  breaker: { failures: number; cooldown: number } | undefined
}

export interface EngineContext {
  readonly opts: ResolvedEngineOptions
  readonly store: Store
  readonly clock: Clock
  readonly logger: LoggerLike
  /** This engine's lease owner id. */
  readonly owner: string
  /** False: commit only, leave timers and activities to the engines that drive. */
  readonly worker: boolean
  readonly broker: WorkflowBroker | undefined
  readonly events: EventEmitter<EngineEvents>
  /** Machine id → version → machine: every version this engine can drive. */
  readonly machines: ReadonlyMap<string, ReadonlyMap<number, AnyMachine>>
  /** Machine id → its highest registered version. */
  readonly latest: ReadonlyMap<string, AnyMachine>
  readonly activities: ReadonlyMap<string, ActivityEntry>
  /** Instances this engine drives (holds the lease of): it runs their timers and activities. */
  readonly owned: Set<string>
  /** `waitFor`'s wake-ups per instance, called after every commit of that instance. */
  readonly waiters: Map<string, Set<() => void>>
  /** Background work (timers firing, activities, outbox publishing) that `close` waits for. */
  readonly background: Set<Promise<unknown>>
  /** Set once `close` was called: nothing new starts. */
  closing: Promise<void> | undefined
  /** Logs a background failure and emits it as `error` when someone listens. */
  reportError(error: unknown, what: string): void
  /** Adds a promise to `background` until it settles. */
  track<T>(promise: Promise<T>): Promise<T>
  /** Throws WORKFLOW_CLOSED once `close` was called. */
  assertOpen(): void
  /** The machine version an instance is pinned to; throws WORKFLOW_UNKNOWN_VERSION / _MACHINE when not registered. */
  machineFor(record: InstanceRecord): AnyMachine
}

/** Checks the options and the definitions (throwing what is wrong) and builds the shared state. */
export function createEngineContext(options: EngineOptions): EngineContext {
  const opts = parseEngineOptions(options)
  const worker = opts.worker
  const broker = opts.broker as WorkflowBroker | undefined
  const logger: LoggerLike = opts.logger

  const activities = new Map<string, ActivityEntry>()
  for (const [name, value] of Object.entries(opts.activities ?? {})) {
    if (typeof value === 'function')
      activities.set(name, {
        run: value as ActivityFunction,
        retry: undefined,
        timeout: undefined,
        limits: undefined,
        key: undefined,
        breaker: undefined,
      })
    else
      activities.set(name, {
        run: value.run as ActivityFunction,
        retry: value.retry,
        timeout: value.timeout,
        limits: value.limits && {
          concurrency: value.limits.concurrency,
          rate: value.limits.rate,
          keyConcurrency: value.limits.perKey?.concurrency,
          keyRate: value.limits.perKey?.rate,
        },
        key: value.limits?.key as ((input: unknown) => string) | undefined,
        breaker: value.breaker,
      })
  }
  validateMachines(opts.machines, {
    activities: worker ? new Set(activities.keys()) : undefined,
    broker: worker ? broker !== undefined : undefined,
  })
  const machines = new Map<string, Map<number, AnyMachine>>()
  const latest = new Map<string, AnyMachine>()
  for (const machine of opts.machines) {
    let versions = machines.get(machine.id)
    if (!versions) {
      versions = new Map()
      machines.set(machine.id, versions)
    }
    versions.set(machine.version, machine)
    const top = latest.get(machine.id)
    if (!top || top.version < machine.version) latest.set(machine.id, machine)
  }

  const events = new EventEmitter<EngineEvents>()
  const background = new Set<Promise<unknown>>()

  const ctx: EngineContext = {
    opts,
    store: opts.store,
    clock: opts.clock,
    logger,
    owner: opts.owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    worker,
    broker,
    events,
    machines,
    latest,
    activities,
    owned: new Set(),
    waiters: new Map(),
    background,
    closing: undefined,

    reportError(error, what) {
      const err = error instanceof Error ? error : new Error(String(error))
      logger.error({ err: err.message, code: (err as WorkflowError).code }, what)
      if (events.listenerCount('error') > 0) events.emit('error', err)
    },

    track(promise) {
      background.add(promise)
      promise.then(
        () => background.delete(promise),
        () => background.delete(promise),
      )
      return promise
    },

    assertOpen() {
      if (ctx.closing) throw new WorkflowError('WORKFLOW_CLOSED', 'the engine is closed: create a new one')
    },

    machineFor(record) {
      const machine = machines.get(record.machine)?.get(record.version)
      if (!machine) {
        throw new WorkflowError(
          machines.has(record.machine) ? 'WORKFLOW_UNKNOWN_VERSION' : 'WORKFLOW_UNKNOWN_MACHINE',
          `instance ${record.id} runs ${record.machine} v${record.version}, which this engine does not have: register every version that still has instances (registered: ${[...machines.keys()].map((id) => `${id} v${[...(machines.get(id)?.keys() ?? [])].join(',')}`).join('; ') || 'none'})`,
          { instanceId: record.id },
        )
      }
      return machine
    },
  }
  return ctx
}
