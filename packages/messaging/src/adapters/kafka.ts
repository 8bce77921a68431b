/**
 * Kafka, through kafkajs ^2.2 (an optional peer dependency: `npm install kafkajs`).
 *
 * URL: `kafka://[user:password@]host[:port][,host[:port]...][?param=value&...]`, port 9092 when
 * left out (createBroker percent-encodes a host list into the URL's host, read back here with
 * decodeURIComponent); more bootstrap brokers also with `brokers=h2:9092` or the `brokers` option.
 *
 * Query parameters (the `kafka` options given in code win over them):
 *   clientId=NAME                        client id in broker logs and quotas (default "backplane")
 *   brokers=HOST:PORT[,HOST:PORT...]     more bootstrap brokers
 *   ssl=true|false                       TLS with Node's default CA store
 *   sasl=plain|scram-sha-256|scram-sha-512   SASL with the URL's user and password (plain by default)
 *   connectionTimeout, requestTimeout, sessionTimeout, heartbeatInterval, maxWaitTimeInMs,
 *   subscribeTimeoutMs, commitIntervalMs=MS   as the options of the same names
 *
 * What it guarantees: publish resolves once every in-sync replica has the messages (acks=all).
 * A subscription is one consumer; a partition's messages reach the core one at a time, in
 * order, and an offset is committed only after the core acked its message (in the background,
 * every commitIntervalMs, and at close), so a crash or a shutdown redelivers rather than loses. Kafka keeps order per key (partition), does not count
 * redeliveries (`redeliveries` is always 0) and keeps messages by retention, not by consumption.
 * Messages without a key go to one partition in runs of 100 (see stickyPartitioner). One group
 * may read several topics: each topic's partitions go to the subscriptions of that topic (see
 * subscriptionAwareAssigner; kafkajs's own assigner would leave topics unread).
 *
 * Not used, because the librdkafka mock cluster we test against refuses them: idempotent
 * producers (so a retried send can duplicate a message: consumers dedupe by CloudEvents id) and,
 * except for `ensureTopics`, the admin API.
 */
import { randomInt, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import net from 'node:net'
import tls from 'node:tls'
import {
  type ConnectionState,
  type DeliveryHandler,
  type LoggerLike,
  MessagingError,
  silentLogger,
  type Transport,
  type TransportDelivery,
  type TransportEvents,
  type TransportMessage,
  type TransportSubscribeOptions,
  type TransportSubscription,
} from '@backplane/messaging'
import { EventEmitter } from 'eventemitter3'
import kafkajs, {
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type EachBatchPayload,
  type ICustomPartitioner,
  type IHeaders,
  type ISocketFactory,
  type Kafka,
  type KafkaConfig,
  type KafkaMessage,
  type logCreator as LogCreator,
  type LogEntry,
  type logLevel as LogLevel,
  type Message,
  type PartitionAssigner,
  type PartitionMetadata,
  type Producer,
} from 'kafkajs'
import { z } from 'zod'

// ---------------------------------------------------------------- the installed client

const SUPPORTED_KAFKAJS = '^2.2.0'

/** @internal Throws MESSAGING_CLIENT_UNSUPPORTED unless `version` is in SUPPORTED_KAFKAJS. */
export function checkKafkajsVersion(version: string | undefined): void {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version ?? '')
  if (match && Number(match[1]) === 2 && Number(match[2]) >= 2) return
  throw new MessagingError(
    'MESSAGING_CLIENT_UNSUPPORTED',
    `kafkajs ${version ?? '(unknown version)'} is installed, but @backplane/messaging/kafka supports kafkajs ${SUPPORTED_KAFKAJS}: npm install kafkajs@${SUPPORTED_KAFKAJS}`,
  )
}

function installedKafkajsVersion(): string | undefined {
  // Resolved from this file, as the kafkajs import above is (tsup's `shims` give the CJS build a
  // file URL for import.meta.url).
  return (createRequire(import.meta.url)('kafkajs/package.json') as { version?: string }).version
}

// At import, so that createBroker fails before connecting anything, with the versions in the message.
checkKafkajsVersion(installedKafkajsVersion())

// ---------------------------------------------------------------- options

const ms = z.number().int().positive()
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
    maxWaitTimeInMs: ms.default(1_000),
    /** How long subscribe waits for the consumer to join its group and get its partitions. */
    subscribeTimeoutMs: ms.default(60_000),
    /**
     * How often the offsets of acked messages are committed, in the background (and at close
     * and rebalances). After a crash, up to this much handled work is delivered again.
     */
    commitIntervalMs: ms.default(1_000),
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

export type KafkaTransportOptions = z.input<typeof kafkaOptionsSchema>
type KafkaOptions = z.output<typeof kafkaOptionsSchema>

const OPTION_NAMES = Object.keys(kafkaOptionsSchema.shape)

function parseKafkaOptions(input: unknown): KafkaOptions {
  const result = kafkaOptionsSchema.safeParse(input ?? {})
  if (result.success) return result.data
  const details = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(options)'
    if (issue.code === 'unrecognized_keys') {
      return `${path}: unknown option(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; expected ${OPTION_NAMES.join(', ')}`
    }
    return `${path}: ${issue.message}`
  })
  throw new MessagingError('MESSAGING_INVALID_OPTIONS', `invalid kafka options: ${details.join('; ')}`, { details })
}

const NUMBER_PARAMS = new Set([
  'connectionTimeout',
  'requestTimeout',
  'sessionTimeout',
  'heartbeatInterval',
  'maxWaitTimeInMs',
  'subscribeTimeoutMs',
  'commitIntervalMs',
])
const SASL_PARAMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512'])
const URL_PARAMS = ['clientId', 'brokers', 'ssl', 'sasl', ...NUMBER_PARAMS]

function withDefaultPort(address: string): string {
  return /:\d+$/.test(address) ? address : `${address}:9092`
}

function splitList(list: string): string[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function invalidUrl(url: URL, expected: string): MessagingError {
  const shown = url.password ? url.href.replace(`:${url.password}@`, ':***@') : url.href
  return new MessagingError('MESSAGING_INVALID_URL', `invalid kafka URL ${shown}: ${expected}`)
}

/** @internal The options a `kafka://` URL says; validated later, with the options given in code. */
export function optionsFromUrl(url: URL): Record<string, unknown> {
  const hosts = splitList(decodeURIComponent(url.hostname))
  // `kafka://h1,h2:9092`: the URL parser gives the port to the whole list.
  const port = url.port
  const brokers = hosts.map((h) => (port && !/:\d+$/.test(h) ? `${h}:${port}` : withDefaultPort(h)))
  const out: Record<string, unknown> = { brokers }
  let mechanism: string | undefined
  for (const [name, value] of url.searchParams) {
    if (NUMBER_PARAMS.has(name)) {
      out[name] = /^\d+$/.test(value) ? Number(value) : value
    } else if (name === 'clientId') {
      out.clientId = value
    } else if (name === 'brokers') {
      brokers.push(...splitList(value).map(withDefaultPort))
    } else if (name === 'ssl') {
      if (value !== 'true' && value !== 'false') throw invalidUrl(url, `ssl=${value}: expected ssl=true or ssl=false`)
      out.ssl = value === 'true'
    } else if (name === 'sasl') {
      if (!SASL_PARAMS.has(value))
        throw invalidUrl(url, `sasl=${value}: expected one of ${[...SASL_PARAMS].join(', ')}`)
      mechanism = value
    } else {
      throw invalidUrl(url, `unknown query parameter "${name}": expected ${URL_PARAMS.join(', ')}`)
    }
  }
  if (url.username) {
    out.sasl = {
      mechanism: mechanism ?? 'plain',
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    }
  } else if (mechanism) {
    throw invalidUrl(url, `sasl=${mechanism} needs a user and password: kafka://user:password@host:9092`)
  }
  return out
}

// ---------------------------------------------------------------- headers (CloudEvents Kafka binding)

/**
 * @internal The core's `ce-*` attributes travel as `ce_*` (CloudEvents Kafka binding). Values stay
 * strings: kafkajs writes them as UTF-8 straight into the record, where a Buffer per header would
 * be one more allocation and copy each.
 */
export function toKafkaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name in headers) {
    out[name.startsWith('ce-') ? `ce_${name.slice(3)}` : name] = headers[name] as string
  }
  return out
}

/** @internal Back to the core's shape: lowercase names, `ce-*`, strings; of a repeated header the last wins, as in Kafka's lastHeader. */
export function fromKafkaHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (!headers) return out
  for (const [raw, value] of Object.entries(headers)) {
    const last = Array.isArray(value) ? value[value.length - 1] : value
    if (last === undefined) continue
    const name = raw.toLowerCase()
    out[name.startsWith('ce_') ? `ce-${name.slice(3)}` : name] = typeof last === 'string' ? last : last.toString('utf8')
  }
  return out
}

function toKafkaMessage(message: TransportMessage): Message {
  const { value } = message
  return {
    key: message.key ?? null,
    value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    headers: toKafkaHeaders(message.headers),
  }
}

// ---------------------------------------------------------------- connection state

interface ConnectionTracker {
  state(): ConnectionState
  /** A broker answered. */
  up(): void
  /** A connection failed or a request went unanswered. */
  down(error: Error): void
  close(): void
}

// kafkajs reconnects by itself but reports little: no event when a socket drops, CONNECT only
// once. So any answered request means connected, and a socket error, a request timeout or a
// crashed consumer means disconnected. A broker closing an idle connection is not an error.
function trackConnection(events: EventEmitter<TransportEvents>): ConnectionTracker {
  let state: ConnectionState = 'connecting'
  return {
    state: () => state,
    up() {
      if (state !== 'connecting' && state !== 'disconnected') return
      state = 'connected'
      events.emit('connected')
    },
    down(error) {
      if (state !== 'connected') return
      state = 'disconnected'
      events.emit('disconnected', error)
    },
    close() {
      state = 'closed'
    },
  }
}

const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
])

function isConnectionError(error: unknown): boolean {
  for (let e = error as Error | undefined, depth = 0; e && depth < 8; e = e.cause as Error | undefined, depth++) {
    if (CONNECTION_ERRORS.has(e.name)) return true
  }
  return false
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

const KEEP_ALIVE_MS = 60_000

// As kafkajs's own (not exported), so that the adapter sees every socket's errors.
const defaultSocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : net.connect({ host, port }, onConnect)
  socket.setKeepAlive(true, KEEP_ALIVE_MS)
  return socket
}

function observedSocketFactory(inner: ISocketFactory, onError: (error: Error) => void): ISocketFactory {
  return (args) => {
    const socket = inner(args)
    // kafkajs listens too and handles the error; this only reports it.
    socket.on('error', (error: Error) => {
      onError(new Error(`connection to ${args.host}:${args.port} failed: ${error.message}`, { cause: error }))
    })
    return socket
  }
}

// ---------------------------------------------------------------- logging

type LogMethod = 'error' | 'warn' | 'info' | 'debug'

function kafkaLogLevel(options: KafkaOptions): LogLevel {
  const { logLevel } = kafkajs
  const name = options.logLevel ?? (options.logger ? 'info' : 'nothing')
  const levels = {
    nothing: logLevel.NOTHING,
    error: logLevel.ERROR,
    warn: logLevel.WARN,
    info: logLevel.INFO,
    debug: logLevel.DEBUG,
  }
  return levels[name]
}

function logMethod(level: LogLevel): LogMethod {
  const { logLevel } = kafkajs
  if (level === logLevel.ERROR) return 'error'
  if (level === logLevel.WARN) return 'warn'
  if (level === logLevel.INFO) return 'info'
  return 'debug'
}

function kafkaLogCreator(logger: LoggerLike): LogCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, ...fields } = log
      logger[logMethod(level)]({ ...fields, system: 'kafka', kafkajs: namespace }, message)
    }
}

// ---------------------------------------------------------------- kafkajs configuration

function kafkaConfig(options: KafkaOptions, onSocketError: (error: Error) => void): KafkaConfig {
  const config: KafkaConfig = {
    brokers: options.brokers,
    clientId: options.clientId,
    connectionTimeout: options.connectionTimeout,
    requestTimeout: options.requestTimeout,
    socketFactory: observedSocketFactory(options.socketFactory ?? defaultSocketFactory, onSocketError),
    logLevel: kafkaLogLevel(options),
  }
  if (options.logger) config.logCreator = kafkaLogCreator(options.logger)
  if (options.ssl !== undefined) config.ssl = options.ssl
  if (options.sasl !== undefined) config.sasl = options.sasl
  return config
}

function consumerConfig(options: KafkaOptions, groupId: string, shouldRestart: () => boolean): ConsumerConfig {
  return {
    groupId,
    sessionTimeout: options.sessionTimeout,
    heartbeatInterval: options.heartbeatInterval ?? Math.min(3_000, Math.floor(options.sessionTimeout / 3)),
    maxWaitTimeInMs: options.maxWaitTimeInMs,
    allowAutoTopicCreation: true,
    partitionAssigners: [subscriptionAwareAssigner],
    // Asked by kafkajs before it restarts a consumer that crashed on a retriable error.
    retry: { restartOnFailure: async () => shouldRestart() },
  }
}

/** @internal Creates the topics of `ensureTopics` that do not exist yet; returns their names. */
export async function ensureTopics(
  admin: Pick<Admin, 'connect' | 'disconnect' | 'listTopics' | 'createTopics'>,
  topics: KafkaOptions['ensureTopics'],
): Promise<string[]> {
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing = topics.filter((t) => !existing.has(t.topic))
    if (missing.length === 0) return []
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: t.topic,
        // -1: the broker's num.partitions / default.replication.factor.
        numPartitions: t.numPartitions ?? -1,
        replicationFactor: t.replicationFactor ?? -1,
      })),
    })
    return missing.map((t) => t.topic)
  } finally {
    await admin.disconnect()
  }
}

// ---------------------------------------------------------------- partitions

/** Keyless messages sent to one partition in a row: about one Kafka batch of small messages. */
const STICKY_RUN = 100

/**
 * @internal
 * Keyed messages go by murmur2 of the key, as with every Kafka client. Keyless ones stay on one
 * partition for STICKY_RUN messages, then move on, as the Java client has done since Kafka 2.4
 * (KIP-480): fewer, fuller produce requests than kafkajs's message-by-message round robin, and
 * keyless messages sent close together keep their order, as on the other brokers.
 */
export function stickyPartitioner(): ICustomPartitioner {
  return () => {
    const byKey = kafkajs.Partitioners.DefaultPartitioner()
    const runs = new Map<string, { index: number; left: number }>()
    return (args) => {
      const { topic, partitionMetadata, message } = args
      if (message.partition != null || message.key != null) return byKey(args)
      const available = partitionMetadata.filter((p) => p.leader >= 0)
      const candidates = available.length > 0 ? available : partitionMetadata
      let run = runs.get(topic)
      if (!run || run.left === 0) {
        run = { index: run ? run.index + 1 : randomInt(1 << 30), left: STICKY_RUN }
        runs.set(topic, run)
      }
      run.left--
      return (candidates[run.index % candidates.length] as PartitionMetadata).partitionId
    }
  }
}

/**
 * @internal
 * kafkajs's round robin hands every member partitions of the leader's topics only, whatever
 * each member subscribed to: two subscriptions of one group to different topics (a service
 * reading `orders` and `refunds` as group `billing`) would leave a topic unread. This one
 * assigns each topic's partitions round robin among the members subscribed to it, like Java's
 * RoundRobinAssignor. Same protocol name and metadata as kafkajs's, so plain kafkajs members
 * can share the group (the leader's algorithm applies).
 */
export const subscriptionAwareAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'RoundRobinAssigner',
  version: 0,
  async assign({ members }) {
    const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol
    const memberIds = members.map((m) => m.memberId).sort()
    const subscribers = new Map<string, Set<string>>()
    for (const { memberId, memberMetadata } of members) {
      for (const topic of MemberMetadata.decode(memberMetadata)?.topics ?? []) {
        const set = subscribers.get(topic) ?? new Set<string>()
        set.add(memberId)
        subscribers.set(topic, set)
      }
    }
    const topics = [...subscribers.keys()].sort()
    // The leader has metadata for its own topics only.
    await cluster.addMultipleTargetTopics(topics)
    const assignment = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]))
    let cursor = 0
    for (const topic of topics) {
      const eligible = subscribers.get(topic) as Set<string>
      const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId)
      for (const partition of partitions.sort((a, b) => a - b)) {
        while (!eligible.has(memberIds[cursor % memberIds.length] as string)) cursor++
        const owned = assignment.get(memberIds[cursor++ % memberIds.length] as string) as Record<string, number[]>
        owned[topic] = [...(owned[topic] ?? []), partition]
      }
    }
    return [...assignment].map(([memberId, owned]) => ({
      memberId,
      memberAssignment: MemberAssignment.encode({ version: 0, assignment: owned, userData: Buffer.alloc(0) }),
    }))
  },
  protocol({ topics }) {
    return {
      name: 'RoundRobinAssigner',
      metadata: kafkajs.AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    }
  },
})

// ---------------------------------------------------------------- consuming

interface Shared {
  kafka: Kafka
  options: KafkaOptions
  logger: LoggerLike
  tracker: ConnectionTracker
  events: EventEmitter<TransportEvents>
}

type Outcome = 'acked' | 'released'

const EMPTY = new Uint8Array(0)
/** How long a partition waits before a released message (failed dead-lettering) is fetched again. */
const RELEASE_PAUSE_MS = 1_000
const RESTART_MIN_MS = 500
const RESTART_MAX_MS = 30_000

async function deliverMessage(
  topic: string,
  message: KafkaMessage,
  payload: EachBatchPayload,
  deliver: DeliveryHandler,
  logger: LoggerLike,
): Promise<Outcome> {
  let outcome: Outcome | undefined
  const settle = (result: Outcome) => async () => {
    outcome ??= result
  }
  const delivery: TransportDelivery = {
    topic,
    key: message.key === null ? undefined : message.key.toString('utf8'),
    headers: fromKafkaHeaders(message.headers),
    value: message.value ?? EMPTY,
    redeliveries: 0,
    ack: settle('acked'),
    release: settle('released'),
    heartbeat: () => payload.heartbeat(),
  }
  try {
    await deliver(delivery)
  } catch (error) {
    logger.error({ system: 'kafka', topic, offset: message.offset, err: asError(error).message }, 'delivery failed')
  }
  // Neither acked nor released is a core bug: keeping the message is the safe side.
  return outcome ?? 'released'
}

/**
 * Offsets of acked messages, committed in the background rather than after every batch:
 * kafkajs's autoCommit awaits an OffsetCommit at the end of each partition's batch before it
 * fetches again, which bounds a consumer to one commit round trip per batch. A commit holds only
 * offsets whose message (and every one before it in the partition) was acked, so it never
 * covers an unhandled message; what is acked but not yet committed when a process crashes is
 * delivered again (at least once). Graceful close and rebalances commit first.
 */
function offsetCommitter(topic: string, consumer: () => Consumer | undefined, logger: LoggerLike, context: object) {
  // partition -> offset of the last acked message (committed as offset + 1, Kafka's next to read)
  let pending = new Map<number, string>()
  let running: Promise<void> | undefined

  async function commit(): Promise<void> {
    const current = consumer()
    if (pending.size === 0 || !current) return
    const batch = pending
    pending = new Map()
    const offsets = [...batch].map(([partition, offset]) => ({
      topic,
      partition,
      offset: (BigInt(offset) + 1n).toString(),
    }))
    try {
      await current.commitOffsets(offsets)
    } catch (error) {
      // Kept for the next commit unless a later offset was acked meanwhile; the group may
      // have moved on (a rebalance), in which case the next join drops partitions we lost.
      for (const [partition, offset] of batch) if (!pending.has(partition)) pending.set(partition, offset)
      logger.debug({ ...context, err: asError(error).message }, 'offset commit failed; retried at the next one')
    }
  }

  return {
    /** The message at `offset` was acked, and every one before it in `partition`. */
    acked(partition: number, offset: string): void {
      pending.set(partition, offset)
    },
    /** Commits what was acked; one commit at a time, so offsets never go backwards. */
    async flush(): Promise<void> {
      while (running) await running
      running = commit().finally(() => {
        running = undefined
      })
      await running
    },
    /** After a rebalance: offsets of partitions no longer ours are not ours to commit. */
    assigned(partitions: number[] | undefined): void {
      const owned = new Set(partitions ?? [])
      for (const partition of pending.keys()) if (!owned.has(partition)) pending.delete(partition)
    },
  }
}

type OffsetCommitter = ReturnType<typeof offsetCommitter>

function batchHandler(
  deliver: DeliveryHandler,
  isClosing: () => boolean,
  committer: OffsetCommitter,
  logger: LoggerLike,
): { handle: (payload: EachBatchPayload) => Promise<void>; idle: () => Promise<void> } {
  let active = 0
  let waiters: (() => void)[] = []
  async function handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    for (const message of batch.messages) {
      if (isClosing()) {
        // Closing: fetch nothing more for this partition while the others finish.
        payload.pause()
        return
      }
      if (!payload.isRunning() || payload.isStale()) return
      const outcome = await deliverMessage(batch.topic, message, payload, deliver, logger)
      if (outcome === 'released') {
        // Unresolved, the offset stays where it is: the message is fetched again, after a pause
        // so that a failing dead-letter topic does not turn into a busy loop.
        if (!isClosing()) setTimeout(payload.pause(), RELEASE_PAUSE_MS).unref()
        return
      }
      // Resolved moves kafkajs's fetch position; acked is what the next commit may cover.
      payload.resolveOffset(message.offset)
      committer.acked(batch.partition, message.offset)
      try {
        // Throttled by kafkajs to heartbeatInterval; throws when the group rebalances, which
        // ends the batch and lets kafkajs rejoin: commit what was handled before it does.
        await payload.heartbeat()
      } catch (error) {
        await committer.flush()
        throw error
      }
    }
  }
  return {
    async handle(payload) {
      active++
      try {
        await handle(payload)
      } finally {
        active--
        if (active === 0) {
          const current = waiters
          waiters = []
          for (const resolve of current) resolve()
        }
      }
    },
    /** Resolves once no batch is being handled. */
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  }
}

function signal(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void
  const promise = new Promise<void>((res) => {
    resolve = res
  })
  return { promise, resolve }
}

function withTimeout(promise: Promise<void>, timeoutMs: number, onTimeout: () => Error): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

interface KafkaSubscription extends TransportSubscription {
  readonly closing: boolean
}

async function openSubscription(
  shared: Shared,
  topic: string,
  options: TransportSubscribeOptions,
  deliver: DeliveryHandler,
): Promise<KafkaSubscription> {
  const { kafka, logger, tracker } = shared
  // A group of its own per plain subscriber: Kafka gives every group all the messages.
  const groupId = options.group ?? `${shared.options.clientId}.subscriber.${randomUUID()}`
  const context = { system: 'kafka', topic, group: groupId }
  let consumer: Consumer | undefined
  let closing = false
  let closed: Promise<void> | undefined
  let restartTimer: NodeJS.Timeout | undefined
  let restarts = 0
  let lastError: Error | undefined
  // Joined, assigned, and one fetch done: the start offsets of a new group are fixed by then
  // (kafkajs looks up "latest" only at its first fetch), so `from: 'latest'` means "after subscribe".
  const ready = signal()
  let isReady = false
  const committer = offsetCommitter(topic, () => consumer, logger, context)
  const batches = batchHandler(deliver, () => closing, committer, logger)
  let commitTimer: NodeJS.Timeout | undefined

  function watch(current: Consumer): void {
    const { events } = current
    let joined = false
    current.on(events.GROUP_JOIN, ({ payload }) => {
      committer.assigned(payload.memberAssignment?.[topic])
      joined = true
      restarts = 0
      tracker.up()
    })
    current.on(events.FETCH, () => {
      if (!joined || isReady) return
      isReady = true
      ready.resolve()
    })
    current.on(events.CONNECT, () => tracker.up())
    current.on(events.REQUEST, () => tracker.up())
    current.on(events.REQUEST_TIMEOUT, ({ payload }) => {
      tracker.down(new Error(`kafka request ${payload.apiName} to ${payload.broker} timed out`))
    })
    current.on(events.CRASH, ({ payload }) => onCrash(current, payload.error, payload.restart))
  }

  function onCrash(current: Consumer, error: Error, restarting: boolean): void {
    if (closing || current !== consumer) return
    lastError = error
    if (isConnectionError(error) || restarting) tracker.down(error)
    if (restarting) {
      logger.warn({ ...context, err: error.message }, 'kafka consumer crashed; kafkajs restarts it')
      return
    }
    // kafkajs gives up on errors it deems permanent, some of which are not (a coordinator that
    // is still loading, a busy broker): a subscription must not end that way, nor a subscribe
    // fail on it before subscribeTimeoutMs.
    shared.events.emit(
      'error',
      new Error(`kafka consumer of ${topic} (group ${groupId}) crashed: ${error.message}`, { cause: error }),
    )
    scheduleRestart()
  }

  function scheduleRestart(): void {
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** restarts)
    restarts++
    logger.warn({ ...context, delayMs: delay }, 'restarting the kafka consumer')
    restartTimer = setTimeout(() => {
      restartTimer = undefined
      void restart()
    }, delay)
  }

  async function restart(): Promise<void> {
    await consumer?.disconnect().catch(() => {})
    if (closing) return
    try {
      await start()
    } catch (error) {
      if (closing) return
      tracker.down(asError(error))
      scheduleRestart()
    }
  }

  async function start(): Promise<void> {
    const next = kafka.consumer(consumerConfig(shared.options, groupId, () => !closing))
    consumer = next
    watch(next)
    await next.connect()
    await next.subscribe({ topics: [topic], fromBeginning: await startFromBeginning() })
    await next.run({
      eachBatch: batches.handle,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.maxInFlight,
      // Offsets are committed by the committer, in the background (see offsetCommitter).
      autoCommit: false,
    })
    commitTimer ??= setInterval(() => void committer.flush(), shared.options.commitIntervalMs)
    commitTimer.unref()
  }

  /**
   * `from: 'latest'` is for a new group only. Kafka commits nothing for a partition the group has
   * not consumed yet, so once the group exists, a partition without a committed offset must start
   * at its beginning: whatever it holds came after the group started, and starting at its end
   * (after a restart, say) would skip what was published meanwhile.
   */
  async function startFromBeginning(): Promise<boolean> {
    if (options.from === 'earliest' || options.group === undefined) return options.from === 'earliest'
    const admin = kafka.admin()
    try {
      await admin.connect()
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return (committed?.partitions ?? []).some((p) => Number(p.offset) >= 0)
    } catch (error) {
      logger.debug(
        { ...context, err: asError(error).message },
        'could not read committed offsets; starting a new group at the latest',
      )
      return false
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  async function stop(): Promise<void> {
    closing = true
    clearTimeout(restartTimer)
    clearInterval(commitTimer)
    // Deliveries in progress end (acked or released), then what was acked is committed while
    // the consumer is still a member; disconnect then stops fetching, leaves the group and
    // closes the connections.
    await batches.idle()
    await committer.flush()
    await consumer?.disconnect().catch((error: unknown) => {
      logger.warn({ ...context, err: asError(error).message }, 'kafka consumer did not disconnect cleanly')
    })
  }

  const timedOut = () =>
    new MessagingError(
      'MESSAGING_TIMEOUT',
      `subscribe to ${topic}: the consumer did not join group ${groupId} within ${shared.options.subscribeTimeoutMs} ms (subscribeTimeoutMs)${lastError ? `; last error: ${lastError.message}` : ''}`,
      { cause: lastError },
    )
  try {
    // A first connect that fails has been retried by kafkajs already: that fails subscribe.
    await start()
    await withTimeout(ready.promise, shared.options.subscribeTimeoutMs, timedOut)
  } catch (error) {
    await stop()
    throw error
  }

  return {
    get closing() {
      return closing
    },
    close() {
      closed ??= stop()
      return closed
    },
  }
}

// ---------------------------------------------------------------- the transport

function watchProducer(producer: Producer, tracker: ConnectionTracker): void {
  const { events } = producer
  producer.on(events.CONNECT, () => tracker.up())
  producer.on(events.REQUEST, () => tracker.up())
  producer.on(events.REQUEST_TIMEOUT, ({ payload }) => {
    tracker.down(new Error(`kafka request ${payload.apiName} to ${payload.broker} timed out`))
  })
}

function groupByTopic(messages: TransportMessage[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>()
  for (const message of messages) {
    let list = byTopic.get(message.topic)
    if (!list) {
      list = []
      byTopic.set(message.topic, list)
    }
    list.push(toKafkaMessage(message))
  }
  return [...byTopic].map(([topic, list]) => ({ topic, messages: list }))
}

async function connectProducer(producer: Producer, options: KafkaOptions): Promise<void> {
  try {
    await producer.connect()
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not connect to Kafka at ${options.brokers.join(', ')}: ${asError(error).message}`,
      { cause: error },
    )
  }
}

async function createTopics(kafka: Kafka, options: KafkaOptions, logger: LoggerLike): Promise<void> {
  if (options.ensureTopics.length === 0) return
  try {
    const created = await ensureTopics(kafka.admin(), options.ensureTopics)
    if (created.length > 0) logger.info({ system: 'kafka', topics: created }, 'kafka topics created')
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not create the kafka topics of ensureTopics (${options.ensureTopics.map((t) => t.topic).join(', ')}): ${asError(error).message}`,
      { cause: error },
    )
  }
}

/** Connects to a Kafka cluster; the transport's producer is connected when this resolves. */
export async function createKafkaTransport(input: KafkaTransportOptions): Promise<Transport> {
  const options = parseKafkaOptions(input)
  const logger = options.logger ?? silentLogger
  const events = new EventEmitter<TransportEvents>()
  const tracker = trackConnection(events)
  const kafka = new kafkajs.Kafka(kafkaConfig(options, (error) => tracker.down(error)))
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    // The librdkafka mock refuses idempotent producers; a retried send may duplicate.
    idempotent: false,
    createPartitioner: stickyPartitioner(),
  })
  watchProducer(producer, tracker)
  await connectProducer(producer, options)
  try {
    await createTopics(kafka, options, logger)
  } catch (error) {
    await producer.disconnect().catch(() => {})
    throw error
  }
  tracker.up()

  const shared: Shared = { kafka, options, logger, tracker, events }
  const subscriptions = new Set<KafkaSubscription>()
  let closing: Promise<void> | undefined

  function assertOpen(): void {
    if (closing) throw new MessagingError('MESSAGING_CLOSED', 'the kafka transport is closed')
  }

  return {
    system: 'kafka',
    capabilities: { durable: true, replay: true, ordering: 'key', atLeastOnce: true },
    events,
    state: () => tracker.state(),

    async publish(messages) {
      assertOpen()
      if (messages.length === 0) return
      try {
        await producer.sendBatch({ acks: -1, topicMessages: groupByTopic(messages) })
      } catch (error) {
        if (isConnectionError(error)) tracker.down(asError(error))
        throw error
      }
      tracker.up()
    },

    async subscribe(topic, subscribeOptions, deliver) {
      assertOpen()
      const subscription = await openSubscription(shared, topic, subscribeOptions, deliver)
      if (closing) {
        await subscription.close()
        throw new MessagingError('MESSAGING_CLOSED', 'the kafka transport was closed while subscribing')
      }
      subscriptions.add(subscription)
      return {
        async close() {
          subscriptions.delete(subscription)
          await subscription.close()
        },
      }
    },

    close() {
      closing ??= (async () => {
        // Subscriptions the core is already closing are not waited for again: their handlers
        // may outlive the core's close timeout.
        await Promise.all([...subscriptions].filter((s) => !s.closing).map((s) => s.close()))
        subscriptions.clear()
        await producer.disconnect().catch((error: unknown) => {
          logger.warn({ system: 'kafka', err: asError(error).message }, 'kafka producer did not disconnect cleanly')
        })
        tracker.close()
      })()
      return closing
    },
  }
}

/** For createBroker('kafka://host:9092?...'): the `kafka` broker options win over the URL's. */
export async function createTransport(
  url: URL,
  options: { logger: LoggerLike | undefined; settings: Record<string, unknown> },
): Promise<Transport> {
  const fromUrl = optionsFromUrl(url)
  const merged: Record<string, unknown> = { ...fromUrl, ...options.settings }
  if (merged.logger === undefined && options.logger) merged.logger = options.logger
  return createKafkaTransport(merged as KafkaTransportOptions)
}
