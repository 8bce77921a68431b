import type tls from 'node:tls'
import { durationSchema, issueLines, renameOptions } from '@backplane/internal'
import { type LoggerLike, MessagingError } from '@backplane/messaging'
import type { ISocketFactory } from 'kafkajs'
import { z } from 'zod'

// Times are ms or duration strings ("30s", "1m"), read as in every @backplane package.
const ms = durationSchema({ min: 1 })
const credentials = { username: z.string().min(1), password: z.string() }
const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v)
const isFunction = (v: unknown) => typeof v === 'function'

const saslSchema = z.discriminatedUnion('mechanism', [
  z.strictObject({ mechanism: z.literal('plain'), ...credentials }),
  z.strictObject({ mechanism: z.literal('scram-sha-256'), ...credentials }),
  z.strictObject({ mechanism: z.literal('scram-sha-512'), ...credentials }),
  z.strictObject({
    mechanism: z.literal('oauthbearer'),
    oauthBearerProvider: z.custom<() => Promise<{ value: string }>>(isFunction, {
      message: 'expected a function returning a promise of { value: token }',
    }),
  }),
])

/** The default Kafka group id of a subscription's group on a topic. */
export function kafkaGroupId(group: string, topic: string): string {
  return `${group}/${topic}`
}

const brokerAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:,/[\]]+):\d{1,5}$/, { message: 'expected "host:port", e.g. "kafka-1:9092"' })

const kafkaOptionsSchema = z
  .strictObject({
    /** Bootstrap brokers, `host:port`: the URL's host list when created from a URL. */
    brokers: z.array(brokerAddress).min(1, { message: 'expected at least one broker "host:port"' }),
    /** Client id the brokers see in logs and quotas. */
    clientId: z.string().min(1).default('backplane'),
    /** TLS: true for Node's default CA store, or options for tls.connect. */
    ssl: z
      .union([z.boolean(), z.custom<tls.ConnectionOptions>(isObject)], {
        message: 'expected true, false or tls.connect options',
      })
      .optional(),
    sasl: saslSchema.optional(),
    /** Time to open a TCP connection (kafkajs default 1000 ms is short for a busy cluster). */
    connectionTimeout: ms.default(3_000),
    /** Time a request waits for its response before kafkajs gives up on it and retries. */
    requestTimeout: ms.default(30_000),
    /** A consumer that sends no heartbeat for this long is removed from its group. */
    sessionTimeout: ms.default(30_000),
    /** Between heartbeats; a third of sessionTimeout, at most 3 s, by default. */
    heartbeatInterval: ms.optional(),
    /**
     * Longest time the broker holds a fetch while there is nothing to return. Subscribing waits
     * for one fetch and closing for the one in flight, hence lower than kafkajs's 5000.
     */
    maxWaitTime: ms.default(1_000),
    /** How long subscribe waits for the consumer to join its group and get its partitions. */
    subscribeTimeout: ms.default(60_000),
    /**
     * How often the offsets of acked messages are committed, in the background (and at close
     * and rebalances). After a crash, up to this much handled work is delivered again.
     */
    commitInterval: ms.default(1_000),
    /**
     * Topics to create at connect when missing, with the admin API (a cluster that does not
     * create topics on first use needs this; the librdkafka mock cannot create topics this way).
     */
    ensureTopics: z
      .array(
        z.strictObject({
          topic: z.string().min(1),
          numPartitions: z.number().int().positive().optional(),
          replicationFactor: z.number().int().positive().optional(),
        }),
      )
      .default([]),
    /** Opens the TCP/TLS connections, e.g. through a proxy: ({ host, port, ssl, onConnect }) => net.Socket. */
    socketFactory: z
      .custom<ISocketFactory>(isFunction, { message: 'expected a function ({ host, port, ssl, onConnect }) => socket' })
      .optional(),
    /**
     * The Kafka group id of a subscription's `group` on a topic. A group means the same on every
     * broker: one per topic (`<group>/<topic>` by default; `/` cannot occur in a topic name, so no
     * two pairs share an id). Return `group` itself to join a group that other Kafka clients already use
     * (then one member joining rebalances every subscription of that id).
     */
    groupId: z
      .custom<(group: string, topic: string) => string>(isFunction, {
        message: 'expected a function (group, topic) => Kafka group id',
      })
      .default(() => kafkaGroupId),
    /** kafkajs's own log lines sent to `logger`: 'info' by default when there is a logger. */
    logLevel: z.enum(['nothing', 'error', 'warn', 'info', 'debug']).optional(),
    logger: z
      .custom<LoggerLike>(
        (v) => isObject(v) && isFunction((v as LoggerLike).warn) && isFunction((v as LoggerLike).error),
        {
          message: 'expected a logger with debug, info, warn and error methods (pino shape)',
        },
      )
      .optional(),
  })
  .superRefine((options, ctx) => {
    if (options.heartbeatInterval !== undefined && options.heartbeatInterval >= options.sessionTimeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatInterval'],
        message: `expected less than sessionTimeout (${options.sessionTimeout}); about a third of it is usual`,
      })
    }
  })

export type KafkaTransportOptions = z.input<typeof kafkaOptionsSchema> & {
  /** @deprecated use `maxWaitTime` */
  maxWaitTimeInMs?: number | undefined
  /** @deprecated use `subscribeTimeout` */
  subscribeTimeoutMs?: number | undefined
  /** @deprecated use `commitInterval` */
  commitIntervalMs?: number | undefined
}
export type KafkaOptions = z.output<typeof kafkaOptionsSchema>

const OPTION_NAMES = Object.keys(kafkaOptionsSchema.shape)

/** The names older versions took (as options and URL parameters), and their current ones. */
export const RENAMED_KAFKA_OPTIONS = [
  { from: 'maxWaitTimeInMs', to: 'maxWaitTime' },
  { from: 'subscribeTimeoutMs', to: 'subscribeTimeout' },
  { from: 'commitIntervalMs', to: 'commitInterval' },
] as const

/** Options with the old names moved to the current ones, with a one-time warning each. */
export function renameKafkaOptions<T>(input: T, where = 'kafka'): T {
  return renameOptions(input, RENAMED_KAFKA_OPTIONS, where, 'BACKPLANE_DEP_MESSAGING')
}

export function parseKafkaOptions(input: unknown): KafkaOptions {
  const result = kafkaOptionsSchema.safeParse(renameKafkaOptions(input ?? {}))
  if (result.success) return result.data
  // Unlike the other options errors, a misspelt name here is answered with the list of names.
  const details = issueLines(result.error.issues).map((line, index) =>
    result.error.issues[index]?.code === 'unrecognized_keys' ? `${line}; expected ${OPTION_NAMES.join(', ')}` : line,
  )
  throw new MessagingError('MESSAGING_INVALID_OPTIONS', `invalid kafka options: ${details.join('; ')}`, { details })
}
