import { durationSchema, type LoggerLike, parseWith, renameOptions, retrySchema } from '@backplane/internal'
import { z } from 'zod'
import type { DedupeStore } from './dedupe.js'
import { MessagingError } from './errors.js'
import { DEFAULT_RETRY, DEPRECATION_CODE, type LegacyRetryOptions, moveLegacyRetry } from './retry.js'

// `__proto__` cannot be a key of the plain objects headers travel in (assigning it sets the
// prototype, and zod drops it): refused here rather than lost on the way.
const hasProtoKey = (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  Object.keys(value).some((name) => name.length === 9 && name.toLowerCase() === '__proto__')
const headerRecord = z.record(z.string(), z.string())
// Typed as the record it pipes into: what callers pass is a Record<string, string>.
const headers = z
  .unknown()
  .refine((value) => !hasProtoKey(value), { message: 'expected header names other than __proto__' })
  .pipe(headerRecord) as unknown as typeof headerRecord

export const publishOptionsSchema = z.strictObject({
  /** Partition/ordering key: messages of one key stay in order where the broker keeps order. */
  key: z.string().optional(),
  headers: headers.optional(),
  /** CloudEvents `id`; a random UUID by default. Publishing again with the same id is a duplicate to dedupe. */
  id: z.string().min(1).optional(),
  /** CloudEvents `type`; the topic name by default. */
  type: z.string().min(1).optional(),
  /** CloudEvents `source`; the broker's `source` by default. */
  source: z.string().min(1).optional(),
  /**
   * CloudEvents `time` (RFC 3339), the event's own; now by default. A router forwarding an event
   * keeps the producer's. When given, the publish time goes in `backplane-published` (`publishedAt`).
   */
  time: z.iso.datetime({ offset: true }).optional(),
  /** Content type of the data: JSON by default, `application/octet-stream` for bytes. */
  contentType: z.string().min(1).optional(),
})
export type PublishOptions = z.input<typeof publishOptionsSchema>

const dedupeSchema = z.strictObject({
  /** How long a handled message id is remembered: ms or a duration string ("24h"). */
  ttl: durationSchema({ min: 1 }).default(24 * 3_600_000),
  store: z.custom<DedupeStore>((v) => typeof v === 'object' && v !== null && 'has' in v && 'add' in v).optional(),
})

export const subscribeOptionsSchema = z.strictObject({
  /** Consumer group: members share the messages (competing consumers); every group gets all of them. */
  group: z.string().min(1).optional(),
  /** Where a new group starts: the oldest message the broker still has, or only new ones. */
  from: z.enum(['earliest', 'latest']).default('latest'),
  /**
   * Attempts in all (`maxAttempts`, the first included) before the message goes to the
   * dead-letter topic, and the waits between them: 3 attempts, 100 ms doubling up to 30 s, full jitter.
   */
  retry: retrySchema(DEFAULT_RETRY).default(DEFAULT_RETRY),
  /** Dead-letter topic; `<topic>.dlq` by default; `false` drops the message after logging it. */
  deadLetter: z.union([z.string().min(1), z.literal(false)]).optional(),
  /** Handlers running at once for this subscription. */
  concurrency: z.number().int().positive().default(1),
  /** One message per key at a time, in order (other keys go on in parallel up to `concurrency`). */
  ordered: z.boolean().default(false),
  /** Skip messages (by CloudEvents source + id) this subscription has already handled. */
  dedupe: z.union([z.literal(true), dedupeSchema]).optional(),
  /** Hand the handler the body as bytes, without JSON parsing. */
  raw: z.boolean().default(false),
  /** How often a long handler tells the broker it is still working: ms or a duration string ("3s"). */
  heartbeat: durationSchema({ min: 1 }).default(3_000),
})
export type SubscribeOptions = z.input<typeof subscribeOptionsSchema> &
  LegacyRetryOptions & {
    /** @deprecated use `heartbeat` */
    heartbeatMs?: number | undefined
  }
export type ResolvedSubscribeOptions = z.output<typeof subscribeOptionsSchema>

export const brokerOptionsSchema = z.strictObject({
  /** CloudEvents `source` of what this broker publishes. */
  source: z.string().min(1).optional(),
  /** pino-shaped logger; silent by default. */
  logger: z.custom<LoggerLike>((v) => typeof v === 'object' && v !== null && 'warn' in v && 'error' in v).optional(),
  /** How long `close()` waits for handlers in progress: ms or a duration string ("10s"). */
  closeTimeout: durationSchema({ min: 1 }).default(10_000),
  /** Adapter options (client id, credentials, TLS, …) merged with what the URL says. */
  kafka: z.record(z.string(), z.unknown()).optional(),
  nats: z.record(z.string(), z.unknown()).optional(),
  memory: z.record(z.string(), z.unknown()).optional(),
})
export type BrokerOptions = z.input<typeof brokerOptionsSchema> & {
  /** @deprecated use `closeTimeout` */
  closeTimeoutMs?: number | undefined
}

export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  return parseWith(
    schema,
    input ?? {},
    (message, details) => new MessagingError('MESSAGING_INVALID_OPTIONS', message, { details }),
    what,
  )
}

/** Broker options with the names older versions took moved to the current ones (one warning each). */
export function renameBrokerOptions(input: BrokerOptions | undefined): unknown {
  return renameOptions(input, [{ from: 'closeTimeoutMs', to: 'closeTimeout' }], 'broker', DEPRECATION_CODE)
}

/** Subscribe options with `maxAttempts`, `backoff` and `heartbeatMs` moved to `retry` and `heartbeat`. */
export function renameSubscribeOptions(input: SubscribeOptions | undefined): unknown {
  const renamed = renameOptions(input, [{ from: 'heartbeatMs', to: 'heartbeat' }], 'subscribe', DEPRECATION_CODE)
  return moveLegacyRetry(renamed, 'subscribe')
}
