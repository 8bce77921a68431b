import {
  type Duration,
  durationSchema,
  isLogger,
  type LoggerLike,
  parseWith,
  renameOptions,
  silentLogger,
} from '@backplane/internal'
import { z } from 'zod'
import type { Clock } from './clock.js'
import { systemClock } from './clock.js'
import { WorkflowError } from './errors.js'
import { type AnyMachine, isMachine, type RetryPolicy } from './machine.js'
import { retryPolicyProblems } from './retry.js'
import type { Store } from './store.js'
import type { ActivityDefinition, ActivityFunction, WaitForOptions, WorkflowBroker } from './types.js'

/** The pino method shape the engine logs through (silent unless given). */
export type { LoggerLike }

/** Code prefix of the DeprecationWarnings of old option names (one per option per process). */
const DEPRECATION_CODE = 'BACKPLANE_DEP_WORKFLOW'

const isStore = (value: unknown): value is Store =>
  typeof value === 'object' &&
  value !== null &&
  [
    'open',
    'close',
    'commit',
    'load',
    'list',
    'history',
    'hasEvent',
    'claim',
    'heartbeat',
    'claimOutbox',
    'ackOutbox',
  ].every((method) => typeof (value as Record<string, unknown>)[method] === 'function')

const hasMethods =
  (...methods: string[]) =>
  (value: unknown) =>
    typeof value === 'object' &&
    value !== null &&
    methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')

const retryPolicy = z.custom<RetryPolicy>().superRefine((value, ctx) => {
  for (const problem of retryPolicyProblems(value, 'retry')) ctx.addIssue({ code: 'custom', message: problem })
})

const rate = z.strictObject({ limit: z.number().int().positive(), per: durationSchema({ min: 1 }) })
const concurrencyLimit = z.number().int().positive()

const activity = z.union([
  z.function(),
  z.strictObject({
    run: z.function(),
    retry: retryPolicy.optional(),
    timeout: durationSchema({ min: 1 }).optional(),
    limits: z
      .strictObject({
        concurrency: concurrencyLimit.optional(),
        rate: rate.optional(),
        key: z.function().optional(),
        perKey: z.strictObject({ concurrency: concurrencyLimit.optional(), rate: rate.optional() }).optional(),
      })
      .refine((limits) => limits.perKey === undefined || limits.key !== undefined, {
        message: 'limits.perKey needs limits.key: a function of the input that returns the key (a string)',
      })
      .optional(),
    breaker: z
      .strictObject({ failures: z.number().int().positive(), cooldown: durationSchema({ min: 1 }).default(30_000) })
      .optional(),
  }),
])

export const engineOptionsSchema = z.strictObject({
  store: z.custom<Store>(isStore, {
    message:
      'expected a store: memoryStore(), sqliteStore(path) from @backplane/workflow/sqlite or postgresStore(...) from @backplane/workflow/postgres',
  }),
  machines: z
    .array(z.custom<AnyMachine>(isMachine, { message: 'expected a machine from defineMachine(...)' }))
    .min(1, 'expected at least one machine'),
  activities: z.record(z.string(), activity).optional(),
  broker: z
    .custom(hasMethods('publish', 'subscribe'), {
      message: 'expected a broker with publish() and subscribe() (a @backplane/messaging Broker)',
    })
    .optional(),
  clock: z
    .custom<Clock>(hasMethods('now', 'setTimeout', 'clearTimeout'), {
      message: 'expected a clock { now(), setTimeout(), clearTimeout() }',
    })
    .default(systemClock),
  logger: z
    .custom<LoggerLike>(isLogger, {
      message: 'expected a pino-shaped logger with debug, info, warn and error',
    })
    .default(silentLogger),
  unhandledEvents: z.enum(['reject', 'ignore']).default('reject'),
  worker: z.boolean().default(true),
  owner: z.string().min(1).max(200).optional(),
  leaseTimeout: durationSchema({ min: 1 }).default(30_000),
  pollInterval: durationSchema({ min: 1 }).default(1_000),
  concurrency: z.number().int().positive().default(64),
  retry: retryPolicy.optional(),
  activityTimeout: durationSchema({ min: 1 }).default(300_000),
  closeTimeout: durationSchema().default(10_000),
  cacheSize: z.number().int().nonnegative().default(10_000),
})

type ActivityInput = ActivityFunction | ActivityDefinition

// Written by hand rather than z.input<typeof engineOptionsSchema>: that would lose the per-field docs
// and the precise types the custom checks see as unknown. test/types.test-d.ts checks the two agree.
/** Options of `createEngine`. */
export interface EngineOptions {
  /** Where instances live: `memoryStore()`, `sqliteStore(...)`, `postgresStore(...)`. */
  store: Store
  /** Every machine (and every version still running) this engine drives. */
  machines: readonly AnyMachine[]
  /** Activity name → function `(input, { idempotencyKey, attempt, signal, … }) => result`, or `{ run, retry, timeout }`. */
  activities?: Readonly<Record<string, ActivityInput>> | undefined
  /** Publishes the outbox and feeds `listen`: a @backplane/messaging Broker. Required when a machine emits. */
  broker?: WorkflowBroker | undefined
  /** Default: the system clock. `manualClock()` for tests. */
  clock?: Clock | undefined
  /** pino-shaped logger; silent by default. */
  logger?: LoggerLike | undefined
  /** What `send` does with an event the current state does not accept: throw (`reject`, default) or record it as ignored. */
  unhandledEvents?: 'reject' | 'ignore' | undefined
  /** `false`: commit only (start, send, retry, inspect) and leave timers and activities to the engines that drive. Default true. */
  worker?: boolean | undefined
  /** Lease owner id of this process. Default: host/pid/random. Give a stable one to take instances back at once after a restart. */
  owner?: string | undefined
  /** How long this engine's lease lasts without a heartbeat (shared stores): others take its instances over after that. Default "30s". */
  leaseTimeout?: Duration | undefined
  /** @deprecated use `leaseTimeout` (same meaning, also takes a duration string). */
  leaseMs?: Duration | undefined
  /** How often to look for work left by others (expired leases, other processes' commits, the outbox). Default "1s". */
  pollInterval?: Duration | undefined
  /** @deprecated use `pollInterval` (same meaning, also takes a duration string). */
  pollMs?: Duration | undefined
  /** Activity attempts running at once. Default 64. */
  concurrency?: number | undefined
  /** Default retry policy of every activity (an activity's and an invoke's own policy override it field by field). */
  retry?: RetryPolicy | undefined
  /** Default timeout of one activity attempt. Default "5m". */
  activityTimeout?: Duration | undefined
  /** How long `close()` waits for running activities before aborting them. Default "10s". */
  closeTimeout?: Duration | undefined
  /** Instances kept in memory between transitions. Default 10,000. */
  cacheSize?: number | undefined
}

export type ResolvedEngineOptions = z.output<typeof engineOptionsSchema>

const invalidOptions = (message: string, details: string[]) =>
  new WorkflowError('WORKFLOW_INVALID_OPTIONS', message, { details })

export function parseEngineOptions(input: unknown): ResolvedEngineOptions {
  const renamed = renameOptions(
    input ?? {},
    [
      { from: 'leaseMs', to: 'leaseTimeout' },
      { from: 'pollMs', to: 'pollInterval' },
    ],
    'createEngine',
    DEPRECATION_CODE,
  )
  return parseWith(engineOptionsSchema, renamed, invalidOptions, 'createEngine')
}

const waitForOptionsSchema = z.object({ timeout: durationSchema().default(30_000) })

export function parseWaitForOptions(input: WaitForOptions | undefined): z.output<typeof waitForOptionsSchema> {
  const renamed = renameOptions(input ?? {}, [{ from: 'timeoutMs', to: 'timeout' }], 'waitFor', DEPRECATION_CODE)
  return parseWith(waitForOptionsSchema, renamed, invalidOptions, 'waitFor')
}
