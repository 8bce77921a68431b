import { durationSchema, parseWith } from '@backplane/internal'
import { type LoggerLike, MessagingError } from '@backplane/messaging'
import { z } from 'zod'

// Durations are ms or strings like "30s", "1h30m", "1w", read as in every @backplane package.
const duration = durationSchema()
const positiveDuration = durationSchema({ min: 1 })
const nameChars = /^[A-Za-z0-9_-]+$/

const tlsSchema = z.union([
  z.boolean(),
  z.strictObject({
    handshakeFirst: z.boolean().optional(),
    ca: z.string().optional(),
    caFile: z.string().optional(),
    cert: z.string().optional(),
    certFile: z.string().optional(),
    key: z.string().optional(),
    keyFile: z.string().optional(),
  }),
])

const natsOptionsSchema = z.strictObject({
  servers: z
    .array(z.string().min(1, { error: 'expected "host[:port]"' }), {
      error: 'expected a list of "host[:port]" strings',
    })
    .min(1, { error: 'expected at least one server, such as "127.0.0.1:4222"' }),
  jetstream: z.boolean({ error: 'expected true or false' }).default(false),
  name: z.string().min(1).optional(),
  user: z.string().optional(),
  pass: z.string().optional(),
  token: z.string().optional(),
  tls: tlsSchema.optional(),
  maxReconnectAttempts: z.number().int().min(-1, { error: 'expected -1 (forever) or a count' }).default(-1),
  reconnectTimeWait: duration.default(250),
  connectTimeout: positiveDuration.default(10_000),
  timeout: positiveDuration.default(5_000),
  stream: z.string().regex(nameChars, { error: 'expected a stream name (letters, digits, _ and -)' }).optional(),
  streamPrefix: z.string().regex(nameChars, { error: 'expected letters, digits, _ and -' }).default('BP_'),
  storage: z.enum(['file', 'memory'], { error: 'expected "file" or "memory"' }).default('file'),
  maxAge: duration.optional(),
  duplicateWindow: positiveDuration.optional(),
  replicas: z.number().int().min(1).max(5, { error: 'expected 1 to 5 replicas' }).default(1),
  ackWait: duration.refine((ms) => ms >= 1_000, { error: 'expected at least 1s' }).default(30_000),
  inactiveThreshold: duration.refine((ms) => ms >= 1_000, { error: 'expected at least 1s' }).default(300_000),
  brokerDedupe: z.boolean({ error: 'expected true or false' }).default(false),
  logger: z
    .custom<LoggerLike>((v) => typeof v === 'object' && v !== null && 'warn' in v && 'error' in v, {
      error: 'expected a pino-shaped logger (debug, info, warn, error)',
    })
    .optional(),
})

export type NatsTransportOptions = z.input<typeof natsOptionsSchema>
/** @internal */
export type ResolvedNatsOptions = z.output<typeof natsOptionsSchema>

/** @internal Validates options; MESSAGING_INVALID_OPTIONS says, option by option, what was expected. */
export function parseNatsOptions(input: unknown): ResolvedNatsOptions {
  return parseWith(
    natsOptionsSchema,
    input ?? {},
    (message, details) => new MessagingError('MESSAGING_INVALID_OPTIONS', message, { details }),
    'nats',
  )
}
