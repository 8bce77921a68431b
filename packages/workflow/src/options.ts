import { z } from 'zod'
import type { Clock } from './clock.js'
import { systemClock } from './clock.js'
import { DURATION_EXPECTED, type Duration, parseDuration } from './duration.js'
import { WorkflowError } from './errors.js'
import { type AnyMachine, isMachine, type RetryPolicy } from './machine.js'
import type { Store } from './store.js'
import { retryPolicyProblems } from './validate.js'

/** The pino method shape the engine logs through (silent unless given). */
export interface LoggerLike {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export const silentLogger: LoggerLike = { debug() {}, info() {}, warn() {}, error() {} }

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value)
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid ${what} ${JSON.stringify(value)}: expected ${DURATION_EXPECTED}`,
      })
      return z.NEVER
    }
    return ms
  })

const positiveDuration = (what: string) =>
  duration(what).refine((ms) => ms > 0, { message: `${what} must be more than 0 ms` })

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

const activity = z.union([
  z.function(),
  z.strictObject({
    run: z.function(),
    retry: retryPolicy.optional(),
    timeout: positiveDuration('timeout').optional(),
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
    .custom<LoggerLike>(hasMethods('debug', 'info', 'warn', 'error'), {
      message: 'expected a pino-shaped logger with debug, info, warn and error',
    })
    .default(silentLogger),
  unhandledEvents: z.enum(['reject', 'ignore']).default('reject'),
  worker: z.boolean().default(true),
  owner: z.string().min(1).max(200).optional(),
  leaseMs: positiveDuration('leaseMs').default(30_000),
  pollMs: positiveDuration('pollMs').default(1_000),
  concurrency: z.number().int().positive().default(64),
  retry: retryPolicy.optional(),
  activityTimeout: positiveDuration('activityTimeout').default(300_000),
  closeTimeout: duration('closeTimeout').default(10_000),
  cacheSize: z.number().int().nonnegative().default(10_000),
})

type ActivityInput = import('./engine.js').ActivityFunction | import('./engine.js').ActivityDefinition

/** Options of `createEngine`. */
export interface EngineOptions {
  /** Where instances live: `memoryStore()`, `sqliteStore(...)`, `postgresStore(...)`. */
  store: Store
  /** Every machine (and every version still running) this engine drives. */
  machines: readonly AnyMachine[]
  /** Activity name → function `(input, { idempotencyKey, attempt, signal, … }) => result`, or `{ run, retry, timeout }`. */
  activities?: Readonly<Record<string, ActivityInput>> | undefined
  /** Publishes the outbox and feeds `listen`: a @backplane/messaging Broker. Required when a machine emits. */
  broker?: import('./engine.js').WorkflowBroker | undefined
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
  /** How long this engine's lease lasts without a heartbeat (shared stores). Default "30s". */
  leaseMs?: Duration | undefined
  /** How often to look for work left by others (expired leases, other processes' commits, the outbox). Default "1s". */
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

export function parseEngineOptions(input: unknown): ResolvedEngineOptions {
  const result = engineOptionsSchema.safeParse(input ?? {})
  if (result.success) return result.data
  const details = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(options)'
    if (issue.code === 'unrecognized_keys')
      return `${path}: unknown option(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    if (issue.code === 'invalid_type' && issue.input === undefined) return `${path}: required`
    return `${path}: ${issue.message}`
  })
  throw new WorkflowError('WORKFLOW_INVALID_OPTIONS', `invalid createEngine options: ${details.join('; ')}`, {
    details,
  })
}

export interface ResolvedRetryPolicy {
  maxAttempts: number
  initialDelay: number
  maxDelay: number
  factor: number
  jitter: boolean
  nonRetryable: readonly string[]
}

/** Merges retry policies, later ones winning field by field, over the defaults. */
export function resolveRetryPolicy(...policies: (RetryPolicy | undefined)[]): ResolvedRetryPolicy {
  const resolved: ResolvedRetryPolicy = {
    maxAttempts: 3,
    initialDelay: 1_000,
    maxDelay: 60_000,
    factor: 2,
    jitter: true,
    nonRetryable: [],
  }
  for (const policy of policies) {
    if (!policy) continue
    if (policy.maxAttempts !== undefined) resolved.maxAttempts = policy.maxAttempts
    if (policy.initialDelay !== undefined)
      resolved.initialDelay = parseDuration(policy.initialDelay) ?? resolved.initialDelay
    if (policy.maxDelay !== undefined) resolved.maxDelay = parseDuration(policy.maxDelay) ?? resolved.maxDelay
    if (policy.factor !== undefined) resolved.factor = policy.factor
    if (policy.jitter !== undefined) resolved.jitter = policy.jitter
    if (policy.nonRetryable !== undefined) resolved.nonRetryable = [...resolved.nonRetryable, ...policy.nonRetryable]
  }
  return resolved
}
