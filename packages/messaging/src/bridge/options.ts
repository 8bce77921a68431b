import { type Backoff, durationSchema, parseWith, retrySchema } from '@backplane/internal'
import type { Broker, LoggerLike } from '@backplane/messaging'
import { z } from 'zod'
import { BridgeError } from './errors.js'
import { filterSchema } from './filter.js'
import { clientGroupSchema } from './groups.js'
import { DEFAULT_JSON_DEPTH } from './json-limits.js'
import { type LegacyBridgeOptions, renameBridgeOptions } from './legacy-options.js'
import type { BridgeStore } from './store.js'

/** Ids of subscriptions and routes: safe in URLs, etcd keys, file names and group names. */
const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1-64 characters among A-Z a-z 0-9 _ -')

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)])

/** Webhook calls: 8 attempts, 1 s doubling up to 5 min, full jitter. */
const WEBHOOK_RETRY: Backoff = { maxAttempts: 8, initialDelay: 1_000, maxDelay: 300_000, factor: 2, jitter: 'full' }
/** Route writes: 10 attempts, 200 ms doubling up to 30 s, full jitter. */
const ROUTING_RETRY: Backoff = { maxAttempts: 10, initialDelay: 200, maxDelay: 30_000, factor: 2, jitter: 'full' }

// Times are ms or duration strings ("30s", "5m"), read as in every @backplane package.
const duration = durationSchema({ min: 1 })

/** Waits before the probes of an open webhook breaker, as the webhook services users know do it. */
const BREAKER_SCHEDULE = ['5s', '5m', '30m', '2h', '5h', '10h']

/** A webhook breaker's settings, each one overridable per subscription. */
const breakerFields = {
  /** Consecutive failed calls (timeouts, connection errors, 5xx, 408, 429) that open it. */
  failures: z.number().int().min(1).max(1_000_000),
  /** The waits before each probe while it is open; the last one repeats. */
  schedule: z
    .array(durationSchema({ min: 1, max: 7 * 86_400_000 }))
    .min(1)
    .max(100),
  /** Failing this long since it first opened, without a success, disables the subscription. */
  disableAfter: durationSchema({ min: 1, max: 366 * 86_400_000 }),
}

export const subscriptionInputSchema = z.strictObject({
  id: idSchema.optional(),
  /** `[broker:]topic` */
  topic: z.string().min(1),
  url: z.string().min(1).max(2048),
  /** Consumer group: subscriptions sharing one split the messages. Default: one of its own. */
  group: clientGroupSchema.optional(),
  /** HMAC-SHA256 key: each call carries `X-Backplane-Signature: sha256=<hex of the body's HMAC>`. */
  secret: z.string().min(1).max(1024).optional(),
  maxAttempts: z.number().int().min(1).max(1_000).optional(),
  filter: filterSchema.optional(),
  /** Dead-letter topic on the subscription's broker; `<topic>.dlq` by default. */
  deadLetter: z.union([z.string().min(1), z.literal(false)]).optional(),
  /** Calls in flight at once to this URL (per-key order is kept). */
  concurrency: z.number().int().min(1).max(1_024).optional(),
  /** This subscription's breaker settings; the others are `webhooks.breaker`'s. */
  breaker: z
    .strictObject({
      failures: breakerFields.failures.optional(),
      schedule: breakerFields.schedule.optional(),
      disableAfter: breakerFields.disableAfter.optional(),
    })
    .optional(),
})
export type SubscriptionInput = z.input<typeof subscriptionInputSchema>

export const routeInputSchema = z.strictObject({
  id: idSchema.optional(),
  /** `[broker:]topic` to read. */
  source: z.string().min(1),
  /** `[broker:]topic` list to write each message to. */
  destinations: z.array(z.string().min(1)).min(1).max(64),
  filter: filterSchema.optional(),
  maxAttempts: z.number().int().min(1).max(1_000).optional(),
  deadLetter: z.union([z.string().min(1), z.literal(false)]).optional(),
})
export type RouteInput = z.input<typeof routeInputSchema>

const apiKeySchema = z
  .strictObject({
    /** Name of the key in logs, and of the caller in idempotency records. */
    id: z.string().min(1).max(128),
    /** The secret itself (use `${ENV_VAR}` in a config file), at least 16 characters... */
    key: z.string().min(16, 'an API key needs at least 16 characters').optional(),
    /** ...or its SHA-256 in hex, to keep the secret out of the config. */
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits')
      .optional(),
    /** Topic patterns this key may publish to. */
    publish: z.array(z.string().min(1)).default([]),
    /** Topic patterns this key may read: SSE streams, webhook subscriptions, route sources. */
    subscribe: z.array(z.string().min(1)).default([]),
  })
  .refine((k) => (k.key === undefined) !== (k.sha256 === undefined), 'give exactly one of `key` and `sha256`')
export type ApiKey = z.input<typeof apiKeySchema>

const brokerInstance = z.custom<Broker>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Broker).publish === 'function' &&
    typeof (v as Broker).subscribe === 'function' &&
    typeof (v as Broker).health === 'function',
  'expected a broker URL or a Broker from createBroker()',
)

/** A broker URL with adapter settings (credentials, TLS, timeouts), as createBroker takes them. */
const brokerSpec = z.strictObject({
  url: z.string().min(1),
  kafka: z.record(z.string(), z.unknown()).optional(),
  nats: z.record(z.string(), z.unknown()).optional(),
  memory: z.record(z.string(), z.unknown()).optional(),
  closeTimeout: duration.optional(),
})
export type BrokerSpec = z.input<typeof brokerSpec>

const storeInstance = z.custom<BridgeStore>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as BridgeStore).load === 'function' &&
    typeof (v as BridgeStore).put === 'function',
  'expected { file }, { etcd }, false, or a BridgeStore',
)

const etcdStoreSchema = z.strictObject({
  endpoints: stringOrList,
  prefix: z.string().min(1).default('/backplane/bridge/'),
  username: z.string().optional(),
  password: z.string().optional(),
  /** Per-call timeout. */
  timeout: duration.default(5_000),
})

export const storeSchema = z.union([
  z.strictObject({ file: z.string().min(1) }),
  z.strictObject({ etcd: etcdStoreSchema }),
  z.literal(false),
  storeInstance,
])
export type StoreOption = z.input<typeof storeSchema>

const brokerName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'broker names are 1-32 of a-z 0-9 _ -, starting with a letter')

export const bridgeOptionsSchema = z
  .strictObject({
    /**
     * Name → broker URL (`memory://`, `kafka://h:9092`, `nats://h:4222?jetstream=true`),
     * `{ url, kafka | nats | memory: adapter settings }`, or a connected Broker (which the bridge
     * does not close).
     */
    brokers: z.record(brokerName, z.union([z.string().min(1), brokerSpec, brokerInstance])),
    /** Broker of topics named without a `broker:` prefix; the first one by default. */
    defaultBroker: z.string().optional(),
    auth: z.strictObject({ keys: z.array(apiKeySchema).default([]) }).default({ keys: [] }),
    /** Accept requests without an API key when no keys are configured. Off by default. */
    insecure: z.boolean().default(false),
    /** Topic allowlist (patterns as in scopes): other topics are answered 404 UNKNOWN_TOPIC. */
    topics: z.array(z.string().min(1)).optional(),
    /** CloudEvents `source` of what the bridge publishes (unless the request gives one). */
    source: z.string().min(1).default('/backplane-bridge'),
    /** Path the handler is mounted under, stripped before routing (Express strips it itself). */
    basePath: z
      .string()
      .regex(/^(\/[^/?#]+)+$/, 'expected a path such as /bridge')
      .optional(),
    limits: z
      .strictObject({
        bodyBytes: z.number().int().positive().default(1_048_576),
        requestTimeout: duration.default(30_000),
        batchMessages: z.number().int().positive().default(1_000),
        /** Arrays and objects nested deeper than this in a JSON body are refused (400 JSON_TOO_DEEP). */
        jsonDepth: z.number().int().min(2).max(1_000).default(DEFAULT_JSON_DEPTH),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        /** Hosts (`hooks.example.com`, `*.example.com`), addresses and networks (`10.0.0.0/8`) webhooks may call. */
        allow: z.array(z.string().min(1)).default([]),
        /** How long one call may take. */
        timeout: duration.default(10_000),
        /** Attempts per message (a subscription's `maxAttempts` wins) and the waits between them. */
        retry: retrySchema(WEBHOOK_RETRY).default(WEBHOOK_RETRY),
        concurrency: z.number().int().min(1).default(8),
        /** A longer Retry-After is cut to this. */
        maxRetryAfter: duration.default(600_000),
        /** The circuit breaker of each subscription (see the README's webhook section). */
        breaker: z
          .strictObject({
            failures: breakerFields.failures.default(5),
            schedule: breakerFields.schedule.prefault(BREAKER_SCHEDULE),
            disableAfter: breakerFields.disableAfter.prefault('5d'),
          })
          .prefault({}),
      })
      .prefault({}),
    routing: z
      .strictObject({
        /** Attempts per message (a route's `maxAttempts` wins) and the waits between them. */
        retry: retrySchema(ROUTING_RETRY).default(ROUTING_RETRY),
        concurrency: z.number().int().min(1).default(16),
      })
      .prefault({}),
    sse: z
      .strictObject({
        /** How often an idle stream gets a `: ping` comment. */
        heartbeat: duration.default(15_000),
        /** Messages held while looking for a Last-Event-ID in the replay. */
        resumeBuffer: z.number().int().positive().default(1_000),
      })
      .prefault({}),
    idempotency: z
      .strictObject({
        /** How long an Idempotency-Key and its answer are kept. */
        ttl: duration.default(24 * 3_600_000),
        max: z.number().int().positive().default(100_000),
      })
      .prefault({}),
    /** Browser origins allowed to call the bridge (CORS), or `*`. */
    cors: z.strictObject({ origins: z.array(z.string().min(1)).min(1) }).optional(),
    subscriptions: z.array(subscriptionInputSchema).default([]),
    routes: z.array(routeInputSchema).default([]),
    /** Where run-time subscriptions and routes are kept. */
    store: storeSchema.default({ file: 'backplane-bridge.state.json' }),
    logger: z.custom<LoggerLike>((v) => typeof v === 'object' && v !== null && 'warn' in v && 'error' in v).optional(),
  })
  .superRefine((o, ctx) => {
    const names = Object.keys(o.brokers)
    if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['brokers'], message: 'name at least one broker' })
    if (o.defaultBroker !== undefined && !names.includes(o.defaultBroker)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultBroker'],
        message: `${JSON.stringify(o.defaultBroker)} is not among the brokers (${names.join(', ')})`,
      })
    }
  })
export type BridgeOptions = z.input<typeof bridgeOptionsSchema> & LegacyBridgeOptions
export type ResolvedBridgeOptions = z.output<typeof bridgeOptionsSchema>

/** Validates bridge options (old option names moved to the new ones first): BRIDGE_INVALID_CONFIG says what is wrong. */
export function parseBridgeOptions(input: unknown, what = 'bridge options'): ResolvedBridgeOptions {
  return parseWith(
    bridgeOptionsSchema,
    renameBridgeOptions(input ?? {}),
    // `what` names the whole thing (a config file's path, say): the message is built here.
    (_, details) =>
      new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `invalid ${what}: ${details.join('; ')}`, { details }),
    what,
  )
}
