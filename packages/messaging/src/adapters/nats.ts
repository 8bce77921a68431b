/**
 * NATS, through nats.js ^2.19 (an optional peer dependency: `npm install nats`), in two modes:
 *
 * - core NATS (`nats://host:4222`): at most once. The server keeps nothing: a message published
 *   while no one subscribes is gone, `from: 'earliest'` is refused, groups are queue groups and a
 *   release cannot redeliver.
 * - JetStream (`nats://host:4222?jetstream=true`): durable and at least once. Each topic is stored
 *   in a stream created on demand, `BP_<topic>` with the topic as its only subject (characters
 *   JetStream refuses in names, like `.`, become `_` and a hash of the topic is appended), unless
 *   a stream already holds the subject or `stream=` names one. A group is a durable pull consumer
 *   named after it, whose `from` counts when it is created; a plain subscriber gets an ephemeral
 *   consumer of its own, deleted when it closes.
 *
 * Reconnects are nats.js's (forever, by default). Publishes wait up to `timeout` for the
 * connection; JetStream ones are sent again after a reconnect (see de-duplication below). Pull
 * consumers resume by themselves, and are re-created if the server lost them.
 *
 * URL: `nats://[user:password@ | token@]host[:port][,host[:port]...][?param=value&...]`, port
 * 4222 when left out; more servers also with `servers=h2:4222,h3:4222` or the `nats.servers`
 * broker option. Query parameters:
 *
 *   jetstream=true|false       JetStream mode (default false: core NATS)
 *   servers=h2:4222,h3:4222    more servers to connect to
 *   name=billing-api           connection name the server shows
 *   tls=true                   require TLS (certificates: the `nats.tls` option, an object)
 *   maxReconnectAttempts=-1    -1 (default) reconnects forever
 *   reconnectTimeWait=250ms    wait between reconnect attempts to one server
 *   connectTimeout=10s         first connection
 *   timeout=5s                 JetStream API requests, PubAcks and core NATS flushes
 *   stream=ORDERS              an existing stream that holds every topic used (never created here)
 *   streamPrefix=BP_           prefix of the streams created on demand
 *   storage=file|memory        storage of the streams created on demand (default file)
 *   maxAge=7d                  how long created streams keep messages (default: forever)
 *   duplicateWindow=2m         JetStream de-duplication window of created streams (server default 2m)
 *   replicas=1                 replicas of created streams (clustered JetStream)
 *   ackWait=30s                how long a delivery may go without ack or heartbeat before redelivery
 *   inactiveThreshold=5m       how long an ephemeral consumer outlives its subscriber
 *   brokerDedupe=true          use the CloudEvents id as `Nats-Msg-Id` (see below)
 *
 * Durations are milliseconds or a number with a unit: ms, s, m, h, d. Every parameter is also an
 * option of `createNatsTransport` and of `createBroker(url, { nats: {...} })`, which wins over the URL.
 *
 * De-duplication: each message gets a `Nats-Msg-Id` unique to one publish call, so JetStream
 * de-duplicates only this adapter's own retry. With `brokerDedupe=true` the id is the message's
 * CloudEvents id: JetStream then drops, within `duplicateWindow`, any later message published
 * with the same id (an idempotent publisher), and de-duplicating subscribers never see them.
 *
 * NATS headers cannot carry line breaks and lose surrounding spaces: header values have CR/LF
 * replaced by spaces. The message key travels URI-encoded in the `backplane-key` header.
 */

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
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
import {
  AckPolicy,
  type ConnectionOptions,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  connect,
  DebugEvents,
  DeliverPolicy,
  Events,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
  type Status,
  StorageType,
  type StreamConfig,
  type TlsOptions,
} from 'nats'
import { z } from 'zod'
import { pubAckInbox } from './nats-pubacks.js'

// ---------------------------------------------------------------- client version

const SUPPORTED_NATS = '^2.19.0'

/** @internal Throws MESSAGING_CLIENT_UNSUPPORTED unless `installed` satisfies ^2.19.0 (unknown passes). */
export function checkNatsVersion(installed: string | undefined): void {
  if (installed === undefined) return
  const match = /^(\d+)\.(\d+)\.(\d+)(-\S+)?$/.exec(installed.trim())
  // Like npm's ^2.19.0: same major, at least 2.19.0, no prerelease.
  const supported = match !== null && match[1] === '2' && Number(match[2]) >= 19 && match[4] === undefined
  if (!supported) {
    throw new MessagingError(
      'MESSAGING_CLIENT_UNSUPPORTED',
      `the installed nats package is version ${installed}; @backplane/messaging needs nats ${SUPPORTED_NATS}: npm install nats@^2.29`,
    )
  }
}

/** @internal Walks up from a file to the nearest package.json named `name` and returns its version. */
export function packageVersionAbove(file: string, name: string, read = readFileSync): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      const json = JSON.parse(read(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (json.name === name && typeof json.version === 'string') return json.version
    } catch {
      // no package.json here (or not JSON): keep walking up
    }
    if (dirname(dir) === dir) return undefined
  }
}

/** @internal The version of the `nats` package this module resolves, or undefined when it cannot tell. */
export function installedNatsVersion(): string | undefined {
  try {
    // Resolving the entry and walking up works whatever the package's exports map allows.
    return packageVersionAbove(createRequire(import.meta.url).resolve('nats'), 'nats')
  } catch {
    return undefined // bundled, or resolved some other way: nothing to check against
  }
}

checkNatsVersion(installedNatsVersion())

// ---------------------------------------------------------------- options

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION_HINT = 'expected a duration: milliseconds, or a number with a unit such as "500ms", "30s", "5m", "7d"'

function durationMs(value: number | string): number {
  if (typeof value === 'number') return value
  const match = DURATION.exec(value) as RegExpExecArray
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1))
}

const duration = z
  .union(
    [
      z.number({ error: DURATION_HINT }).int({ error: DURATION_HINT }).nonnegative({ error: DURATION_HINT }),
      z.string().regex(DURATION, { error: DURATION_HINT }),
    ],
    { error: DURATION_HINT },
  )
  .transform(durationMs)
const positiveDuration = duration.refine((ms) => ms > 0, { error: `${DURATION_HINT}, above 0` })
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
  const result = natsOptionsSchema.safeParse(input ?? {})
  if (result.success) return result.data
  const details = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(options)'
    if (issue.code === 'unrecognized_keys') {
      return `${path}: unknown option(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    }
    return `${path}: ${issue.message}`
  })
  throw new MessagingError('MESSAGING_INVALID_OPTIONS', `invalid nats options: ${details.join('; ')}`, { details })
}

type ParamKind = 'string' | 'boolean' | 'integer' | 'list'
const URL_PARAMS: Record<string, ParamKind> = {
  jetstream: 'boolean',
  servers: 'list',
  name: 'string',
  tls: 'boolean',
  maxReconnectAttempts: 'integer',
  reconnectTimeWait: 'string',
  connectTimeout: 'string',
  timeout: 'string',
  stream: 'string',
  streamPrefix: 'string',
  storage: 'string',
  maxAge: 'string',
  duplicateWindow: 'string',
  replicas: 'integer',
  ackWait: 'string',
  inactiveThreshold: 'string',
  brokerDedupe: 'boolean',
}

function paramValue(kind: ParamKind, raw: string): unknown {
  switch (kind) {
    case 'boolean':
      // Anything else is left as a string for validation to report.
      return raw === 'true' || raw === '1' || raw === '' ? true : raw === 'false' || raw === '0' ? false : raw
    case 'integer':
      return /^-?\d+$/.test(raw) ? Number(raw) : raw
    case 'list':
      return raw.split(',').filter((s) => s.length > 0)
    default:
      return raw
  }
}

/** @internal Reads the options a `nats://` URL carries (see the top of this file). */
export function natsOptionsFromUrl(url: URL): Record<string, unknown> {
  if (url.protocol !== 'nats:') {
    throw new MessagingError('MESSAGING_INVALID_URL', `expected a nats:// URL, got ${JSON.stringify(url.protocol)}`)
  }
  if (url.pathname !== '' && url.pathname !== '/') {
    throw new MessagingError(
      'MESSAGING_INVALID_URL',
      `unexpected path ${JSON.stringify(url.pathname)} in the NATS URL: expected nats://host:4222[?param=value]`,
    )
  }
  const options: Record<string, unknown> = {
    servers: decodeURIComponent(url.host)
      .split(',')
      .filter((s) => s.length > 0),
  }
  const user = decodeURIComponent(url.username)
  const pass = decodeURIComponent(url.password)
  // nats://token@host is NATS's own convention for token authentication.
  if (user && pass) Object.assign(options, { user, pass })
  else if (user) options.token = user
  const unknown: string[] = []
  for (const [key, raw] of url.searchParams) {
    const kind = URL_PARAMS[key]
    if (kind === undefined) unknown.push(key)
    else if (key === 'servers')
      options.servers = [...(options.servers as string[]), ...(paramValue(kind, raw) as string[])]
    else options[key] = paramValue(kind, raw)
  }
  if (unknown.length > 0) {
    throw new MessagingError(
      'MESSAGING_INVALID_OPTIONS',
      `unknown NATS URL parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}: expected ${Object.keys(URL_PARAMS).join(', ')}`,
      { details: unknown.map((k) => `${k}: unknown URL parameter`) },
    )
  }
  return options
}

// ---------------------------------------------------------------- names

const MAX_NAME = 200
const UNSAFE_NAME_CHARS = /[^A-Za-z0-9_-]/g

function fnv1a(text: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16).padStart(8, '0')
}

/**
 * @internal A stream or consumer name for any text: JetStream names cannot hold `.`, `*`, `>`,
 * whitespace or path separators. A name that had to change gets a hash of the original, so
 * `a.b` and `a_b` do not end up sharing one stream.
 */
export function safeName(raw: string): string {
  const cleaned = raw.replace(UNSAFE_NAME_CHARS, '_')
  if (cleaned === raw && raw.length <= MAX_NAME) return raw
  return `${cleaned.slice(0, MAX_NAME - 9)}_${fnv1a(raw)}`
}

/** @internal The stream created on demand for a topic. */
export function streamNameFor(topic: string, prefix = 'BP_'): string {
  return safeName(`${prefix}${topic}`)
}

/** @internal A group's durable consumer; on a stream shared by several topics the topic is part of it. */
export function consumerNameFor(group: string, topic: string, streamIsTopics: boolean): string {
  return safeName(streamIsTopics ? group : `${group}.${topic}`)
}

/** @internal Throws unless `topic` is a subject messages can be published to (no wildcards, no spaces). */
export function checkSubject(topic: string): void {
  const tokens = topic.split('.')
  if (topic.length === 0 || /\s/.test(topic) || tokens.some((t) => t === '' || t === '*' || t === '>')) {
    throw new MessagingError(
      'MESSAGING_INVALID_OPTIONS',
      `topic ${JSON.stringify(topic)} is not a NATS subject to publish to: expected dot-separated tokens without spaces or the wildcards * and >`,
    )
  }
}

// ---------------------------------------------------------------- headers

const KEY_HEADER = 'backplane-key'

function headerValue(value: string): string {
  // Most values have no line break: skip the regular expression for them.
  return value.includes('\n') || value.includes('\r') ? value.replace(/[\r\n]+/g, ' ') : value
}

// JetStream's de-duplication header (what js.publish's `msgID` option sets).
const MSG_ID_HEADER = 'Nats-Msg-Id'

/**
 * With `msgId`, the headers carry JetStream's Nats-Msg-Id too: appended here rather than passed
 * as js.publish's `msgID`, which sets it with a search of every name to replace, then another to
 * append (nats.js keeps headers in a Map but finds a name by listing all of them).
 */
function toNatsHeaders(message: TransportMessage, msgId?: string): MsgHdrs {
  const h = natsHeaders()
  const { headers } = message
  for (const name in headers) {
    const value = headerValue(headers[name] as string)
    const lower = name.toLowerCase()
    // The core's names are lowercase and unique: append, without set's search for the name to
    // replace. A name that lowercases onto another one replaces it, as before.
    if (lower === name) h.append(name, value)
    else h.set(lower, value)
  }
  if (message.key !== undefined) h.set(KEY_HEADER, encodeURIComponent(message.key))
  if (msgId !== undefined) h.append(MSG_ID_HEADER, msgId)
  return h
}

function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // written by some other publisher, not URI-encoded
  }
}

function fromNatsHeaders(h: MsgHdrs | undefined): { key: string | undefined; headers: Record<string, string> } {
  const headers: Record<string, string> = {}
  let key: string | undefined
  if (!h) return { key, headers }
  // Iterated rather than keys() + get(name): get searches every name again.
  for (const [name, values] of h) {
    const lower = name.toLowerCase()
    const value = values[0] ?? ''
    if (lower === KEY_HEADER) key = decodeKey(value)
    // Nats-Msg-Id, Nats-Expected-*: protocol, not the application's headers.
    else if (!lower.startsWith('nats-')) headers[lower] = value
  }
  return { key, headers }
}

// ---------------------------------------------------------------- small helpers

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms).unref()
    signal?.addEventListener('abort', done, { once: true })
  })
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function apiErrorCode(error: unknown): number | undefined {
  return (error as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code
}

function natsCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

const JS_ERR = {
  streamNameInUse: 10058,
  streamNotFound: 10059,
  subjectsOverlap: 10065,
  consumerNotFound: 10014,
} as const

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MessagingError('MESSAGING_TIMEOUT', `${what}: no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function publishError(error: unknown, topic: string, timeoutMs: number): MessagingError {
  if (MessagingError.is(error)) return error
  if (natsCode(error) === 'DISCONNECT') {
    return new MessagingError(
      'MESSAGING_PUBLISH_FAILED',
      `publish to ${topic}: the connection to NATS dropped before the server confirmed it; the message may be lost`,
      { cause: error },
    )
  }
  if (natsCode(error) === 'TIMEOUT') {
    return new MessagingError(
      'MESSAGING_TIMEOUT',
      `publish to ${topic}: no acknowledgement from JetStream within ${timeoutMs} ms (server down or reconnecting?); the message may or may not be stored`,
      { cause: error },
    )
  }
  return new MessagingError('MESSAGING_PUBLISH_FAILED', `publish to ${topic} failed: ${errorText(error)}`, {
    cause: error,
  })
}

// ---------------------------------------------------------------- connection

function connectionOptions(opts: ResolvedNatsOptions): ConnectionOptions {
  const options: ConnectionOptions = {
    servers: opts.servers,
    maxReconnectAttempts: opts.maxReconnectAttempts,
    reconnectTimeWait: opts.reconnectTimeWait,
    timeout: opts.connectTimeout,
    // Subscriptions re-sent on reconnect are what brings core NATS subscribers back.
    reconnect: true,
    // Otherwise nats.js makes two Errors per request (a JetStream publish is one), capturing the
    // caller's stack each time, in case the request fails: that was a good part of what a
    // publish cost. Our failures are MessagingErrors thrown from the publish call (its stack) with
    // nats.js's error as the cause.
    noAsyncTraces: true,
  }
  if (opts.name !== undefined) options.name = opts.name
  if (opts.user !== undefined) options.user = opts.user
  if (opts.pass !== undefined) options.pass = opts.pass
  if (opts.token !== undefined) options.token = opts.token
  if (opts.tls !== undefined && opts.tls !== false) options.tls = tlsOptions(opts.tls)
  return options
}

function tlsOptions(tls: Exclude<ResolvedNatsOptions['tls'], boolean | undefined> | true): TlsOptions {
  const options: TlsOptions = {}
  if (tls === true) return options
  for (const [name, value] of Object.entries(tls)) if (value !== undefined) Object.assign(options, { [name]: value })
  return options
}

async function connectTo(opts: ResolvedNatsOptions): Promise<NatsConnection> {
  try {
    return await connect(connectionOptions(opts))
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not connect to NATS at ${opts.servers.join(', ')}: ${errorText(error)}`,
      { cause: error },
    )
  }
}

interface ConnectionWatch {
  events: EventEmitter<TransportEvents>
  state(): ConnectionState
  /** Our own close: the end of the connection is then no news. */
  closing(): void
  /** Resolves once connected; MESSAGING_TIMEOUT when still not at `deadline`. */
  whenConnected(deadline: number, what: string): Promise<void>
  /** Resolves at the next disconnect or reconnect; cancel() when no longer interested. */
  nextChange(): { promise: Promise<void>; cancel(): void }
}

/** Maps nats.js's status stream to the transport's events and state. */
function watchConnection(nc: NatsConnection, logger: LoggerLike): ConnectionWatch {
  const events = new EventEmitter<TransportEvents>()
  let state: ConnectionState = 'connected'
  let closing = false
  // Waiters in a Set (cheap to leave) rather than listeners on one shared promise, which would
  // pile up with every publish until the next disconnect.
  const changeWaiters = new Set<() => void>()
  const connectWaiters = new Set<() => void>()
  const wakeAll = (waiters: Set<() => void>) => {
    for (const resolve of waiters) resolve()
    waiters.clear()
  }

  function waiter(waiters: Set<() => void>) {
    let resolver: () => void = () => {}
    const promise = new Promise<void>((resolve) => {
      resolver = resolve
      waiters.add(resolve)
    })
    return { promise, cancel: () => void waiters.delete(resolver) }
  }

  async function whenConnected(deadline: number, what: string): Promise<void> {
    while (state !== 'connected') {
      if (state === 'closed') throw closedError()
      const back = waiter(connectWaiters)
      try {
        await withTimeout(back.promise, Math.max(0, deadline - Date.now()), `${what}: NATS is not reachable`)
      } finally {
        back.cancel()
      }
    }
  }

  function onStatus(status: Status): void {
    switch (status.type) {
      case Events.Disconnect:
        state = 'disconnected'
        wakeAll(changeWaiters)
        events.emit(
          'disconnected',
          new Error(`lost the connection to NATS server ${String(status.data)}; reconnecting`),
        )
        break
      case Events.Reconnect:
        state = 'connected'
        wakeAll(changeWaiters)
        wakeAll(connectWaiters)
        logger.info({ server: status.data }, 'nats reconnected')
        events.emit('connected')
        break
      case Events.Error:
        events.emit('error', status.data instanceof Error ? status.data : new Error(String(status.data)))
        break
      case Events.LDM:
        // Lame duck mode: the server is going away; nats.js moves to another one by itself.
        logger.warn({ server: status.data }, 'nats server entering lame duck mode')
        break
      case DebugEvents.Reconnecting:
        logger.debug({ server: status.data }, 'nats reconnecting')
        break
      default:
        logger.debug({ type: status.type, data: status.data }, 'nats status')
    }
  }

  void (async () => {
    for await (const status of nc.status()) onStatus(status)
  })().catch((error: unknown) => logger.warn({ err: errorText(error) }, 'nats status stream ended'))
  void nc.closed().then((error) => {
    state = 'closed'
    wakeAll(changeWaiters)
    wakeAll(connectWaiters)
    if (closing) return
    // Only when reconnecting was given up (maxReconnectAttempts) or the server refused us for good.
    const reason = error ?? new Error('the NATS connection closed')
    logger.error({ err: reason.message }, 'nats connection closed for good')
    events.emit('disconnected', reason)
    events.emit('error', reason)
  })

  return {
    events,
    state: () => state,
    closing: () => {
      closing = true
    },
    whenConnected,
    nextChange: () => waiter(changeWaiters),
  }
}

async function drain(nc: NatsConnection, timeoutMs: number, logger: LoggerLike): Promise<void> {
  if (nc.isClosed()) return
  try {
    await withTimeout(nc.drain(), timeoutMs, 'draining the NATS connection')
  } catch (error) {
    // Draining needs the server; while it is away just close.
    logger.debug({ err: errorText(error) }, 'nats drain failed; closing')
    await nc.close().catch(() => undefined)
  }
}

function closedError(): MessagingError {
  return new MessagingError('MESSAGING_CLOSED', 'the NATS transport is closed')
}

/** Counts deliveries the core has not settled yet and lets close wait for them. */
function inFlightCounter() {
  let count = 0
  let waiters: (() => void)[] = []
  const notify = () => {
    const current = waiters
    waiters = []
    for (const resolve of current) resolve()
  }
  return {
    get count() {
      return count
    },
    add() {
      count++
    },
    done() {
      count--
      notify()
    },
    /** Resolves at the next change (or at once when `ready()` holds). */
    async until(ready: () => boolean): Promise<void> {
      while (!ready()) await new Promise<void>((resolve) => waiters.push(resolve))
    },
    wake: notify,
  }
}

function runDelivery(
  deliver: DeliveryHandler,
  delivery: TransportDelivery,
  logger: LoggerLike,
  done: () => void,
): void {
  const failed = (error: unknown) => {
    // The core settles every delivery; a rejection is a bug upstream: keep the message.
    logger.error({ topic: delivery.topic, err: errorText(error) }, 'delivery failed; releasing the message')
    delivery.release().then(done, done)
  }
  // Later, not inside nats.js's callback or iterator; one microtask rather than a promise chain.
  queueMicrotask(() => {
    let settled: Promise<void>
    try {
      settled = deliver(delivery)
    } catch (error) {
      failed(error)
      return
    }
    settled.then(done, failed)
  })
}

// ---------------------------------------------------------------- core NATS

function coreDelivery(topic: string, msg: Msg, logger: LoggerLike): TransportDelivery {
  const { key, headers } = fromNatsHeaders(msg.headers)
  return {
    topic,
    key,
    headers,
    value: msg.data,
    redeliveries: 0,
    ack: async () => {},
    release: async () => {
      // Core NATS keeps nothing: there is no one to give the message back to.
      logger.warn({ topic, id: headers['ce-id'] }, 'core NATS cannot redeliver a released message: it is dropped')
    },
    heartbeat: async () => {},
  }
}

function coreTransport(nc: NatsConnection, opts: ResolvedNatsOptions, logger: LoggerLike): Transport {
  const watch = watchConnection(nc, logger)
  let closed = false

  async function publish(messages: TransportMessage[]): Promise<void> {
    if (closed) throw closedError()
    const topic = messages[0]?.topic ?? ''
    for (const message of messages) checkSubjectForPublish(message.topic)
    const deadline = Date.now() + opts.timeout
    // What nats.js buffers while disconnected is dropped at the next reconnect attempt: wait.
    await watch.whenConnected(deadline, `publish to ${topic}`)
    try {
      for (const message of messages) {
        nc.publish(message.topic, message.value, { headers: toNatsHeaders(message) })
      }
      // Core NATS is at most once: after the flush the server has the messages and hands them to
      // whoever subscribes at this moment. It keeps nothing for later or absent subscribers.
      await withTimeout(nc.flush(), Math.max(1, deadline - Date.now()), `publish to ${topic}`)
    } catch (error) {
      throw publishError(error, topic, opts.timeout)
    }
  }

  async function subscribe(
    topic: string,
    options: TransportSubscribeOptions,
    deliver: DeliveryHandler,
  ): Promise<TransportSubscription> {
    if (closed) throw closedError()
    checkSubject(topic)
    if (options.from === 'earliest') {
      throw new MessagingError(
        'MESSAGING_UNSUPPORTED',
        `core NATS keeps no messages, so there is no earliest to start ${topic} from: use JetStream (add ?jetstream=true to the nats:// URL) or from: 'latest'`,
      )
    }
    await watch.whenConnected(Date.now() + opts.timeout, `subscribe to ${topic}`)
    const inFlight = inFlightCounter()
    const sub = nc.subscribe(topic, {
      ...(options.group === undefined ? {} : { queue: options.group }),
      callback: (error, msg) => {
        if (error) {
          logger.error({ topic, err: error.message }, 'nats subscription error')
          return
        }
        inFlight.add()
        runDelivery(deliver, coreDelivery(topic, msg, logger), logger, () => inFlight.done())
      },
    })
    try {
      // The server knows the subscription once the flush returns: later messages reach it.
      await withTimeout(nc.flush(), opts.timeout, `subscribe to ${topic}`)
    } catch (error) {
      sub.unsubscribe()
      throw error
    }
    let closing: Promise<void> | undefined
    return {
      close() {
        closing ??= (async () => {
          if (!sub.isClosed()) sub.unsubscribe()
          await inFlight.until(() => inFlight.count === 0)
        })()
        return closing
      },
    }
  }

  return {
    system: 'nats',
    capabilities: { durable: false, replay: false, ordering: 'topic', atLeastOnce: false },
    events: watch.events,
    state: watch.state,
    publish,
    subscribe,
    async close() {
      if (closed) return
      closed = true
      watch.closing()
      await drain(nc, opts.timeout, logger)
    },
  }
}

function checkSubjectForPublish(topic: string): void {
  try {
    checkSubject(topic)
  } catch (error) {
    throw new MessagingError('MESSAGING_INVALID_MESSAGE', (error as Error).message)
  }
}

// ---------------------------------------------------------------- JetStream: streams

interface StreamRef {
  name: string
  /** Created for this topic alone (so consumer names need not mention the topic). */
  ownTopic: boolean
  /** When the stream was created: a different value later means it was deleted and made anew. */
  created: string
}

function streamConfig(opts: ResolvedNatsOptions, name: string, topic: string): Partial<StreamConfig> {
  const config: Partial<StreamConfig> = {
    name,
    subjects: [topic],
    storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: opts.replicas,
  }
  // Only what was asked for: two processes with the same options then send identical
  // configurations, and adding a stream that exists with the same configuration is a no-op.
  if (opts.maxAge !== undefined) config.max_age = nanos(opts.maxAge)
  if (opts.duplicateWindow !== undefined) config.duplicate_window = nanos(opts.duplicateWindow)
  return config
}

/** Finds or creates the stream of each topic, once per topic (and again after `forget`). */
function streamRegistry(jsm: JetStreamManager, opts: ResolvedNatsOptions, logger: LoggerLike) {
  const known = new Map<string, Promise<StreamRef>>()

  async function givenStream(topic: string, name: string): Promise<StreamRef> {
    const holder = await jsm.streams.find(topic).catch(() => undefined)
    if (holder !== name) {
      throw new MessagingError(
        'MESSAGING_INVALID_OPTIONS',
        `stream ${name} (the stream option) does not hold subject ${topic}${holder ? `: stream ${holder} does` : ''}; add the subject to the stream or leave the stream option out to have one created per topic`,
      )
    }
    return { name, ownTopic: false, created: (await jsm.streams.info(name)).created }
  }

  async function locate(topic: string): Promise<StreamRef> {
    if (opts.stream !== undefined) return givenStream(topic, opts.stream)
    const name = streamNameFor(topic, opts.streamPrefix)
    try {
      const info = await jsm.streams.add(streamConfig(opts, name, topic))
      return { name, ownTopic: true, created: info.created }
    } catch (error) {
      const code = apiErrorCode(error)
      if (code === JS_ERR.subjectsOverlap) {
        // Someone keeps this subject in a stream of their own (say ORDERS with orders.>): use it.
        const holder = await jsm.streams.find(topic)
        logger.info({ topic, stream: holder }, 'nats: using the existing stream that holds the topic')
        return { name: holder, ownTopic: false, created: (await jsm.streams.info(holder)).created }
      }
      if (code === JS_ERR.streamNameInUse) {
        logger.warn(
          { topic, stream: name },
          'nats: the stream exists with other settings (maxAge, storage, ...); using it as it is',
        )
        return { name, ownTopic: true, created: (await jsm.streams.info(name)).created }
      }
      throw error
    }
  }

  return {
    ensure(topic: string): Promise<StreamRef> {
      let ref = known.get(topic)
      if (!ref) {
        ref = locate(topic)
        known.set(topic, ref)
        ref.catch(() => known.delete(topic))
      }
      return ref
    },
    forget(topic: string): void {
      known.delete(topic)
    },
  }
}

// ---------------------------------------------------------------- JetStream: consumers

interface ConsumerSpec {
  stream: string
  topic: string
  /** Durable name for a group; undefined for a subscriber's own ephemeral consumer. */
  durable: string | undefined
  from: 'earliest' | 'latest'
}

function consumerConfig(spec: ConsumerSpec, opts: ResolvedNatsOptions, startSeq: number | undefined) {
  const config: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: spec.from === 'earliest' ? DeliverPolicy.All : DeliverPolicy.New,
    ack_wait: nanos(opts.ackWait),
    // Retries and dead letters belong to the core: JetStream redelivers for ever.
    max_deliver: -1,
    filter_subject: spec.topic,
  }
  if (spec.durable !== undefined) config.durable_name = spec.durable
  else config.inactive_threshold = nanos(opts.inactiveThreshold)
  if (startSeq !== undefined) {
    config.deliver_policy = DeliverPolicy.StartSequence
    config.opt_start_seq = startSeq
  }
  return config
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name)
  } catch (error) {
    if (apiErrorCode(error) === JS_ERR.consumerNotFound) return undefined
    throw error
  }
}

/**
 * Finds the group's durable consumer or creates it; its deliver policy is fixed when it is
 * created (a group that exists keeps its position whatever `from` says now). Ephemeral
 * consumers are always created. `startSeq` is where a replacement for a lost consumer starts.
 */
async function ensureConsumer(
  jsm: JetStreamManager,
  spec: ConsumerSpec,
  opts: ResolvedNatsOptions,
  startSeq: number | undefined,
): Promise<{ info: ConsumerInfo; created: boolean }> {
  const config = consumerConfig(spec, opts, startSeq)
  if (spec.durable === undefined) return { info: await jsm.consumers.add(spec.stream, config), created: true }
  const existing = await consumerInfo(jsm, spec.stream, spec.durable)
  if (existing) return { info: checkPull(existing), created: false }
  try {
    return { info: checkPull(await jsm.consumers.add(spec.stream, config)), created: true }
  } catch (error) {
    // Another member created it meanwhile, with another start: theirs stands.
    const raced = await consumerInfo(jsm, spec.stream, spec.durable)
    if (raced) return { info: checkPull(raced), created: false }
    throw error
  }
}

function checkPull(info: ConsumerInfo): ConsumerInfo {
  if (info.config.deliver_subject) {
    throw new MessagingError(
      'MESSAGING_SUBSCRIBE_FAILED',
      `consumer ${info.name} on stream ${info.stream_name} is a push consumer; a group needs a pull consumer: delete it or use another group name`,
    )
  }
  return info
}

// Acks are fire-and-forget publishes; a closed connection must not turn one into a failure of
// the handler: JetStream redelivers what it did not hear about.
function sendAck(msg: JsMsg, what: 'ack' | 'nak' | 'working', logger: LoggerLike): void {
  try {
    if (what === 'ack') msg.ack()
    else if (what === 'nak') msg.nak()
    else msg.working()
  } catch (error) {
    logger.warn({ subject: msg.subject, err: errorText(error) }, `nats ${what} not sent; JetStream will redeliver`)
  }
}

/**
 * Acks (and naks) of one event-loop turn, sent together. nats.js writes what was queued once
 * per run of microtasks; acks of deliveries that end in separate promise chains would each cost
 * a socket write (a system call) otherwise. Each message still gets its own ack, after its
 * handler, within the same turn.
 */
function ackBatcher(logger: LoggerLike) {
  let pending: { msg: JsMsg; what: 'ack' | 'nak' }[] = []
  let scheduled = false
  function flush(): void {
    scheduled = false
    const list = pending
    pending = []
    for (const { msg, what } of list) sendAck(msg, what, logger)
  }
  return {
    send(msg: JsMsg, what: 'ack' | 'nak'): void {
      pending.push({ msg, what })
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    /** Sends what is waiting now (before a flush round trip or a close). */
    flush,
  }
}

type AckBatcher = ReturnType<typeof ackBatcher>

/** One JetStream delivery; a class rather than closures per message. */
class JetStreamDelivery implements TransportDelivery {
  readonly key: string | undefined
  readonly headers: Record<string, string>
  readonly value: Uint8Array
  readonly redeliveries: number
  private settled = false

  constructor(
    readonly topic: string,
    private readonly msg: JsMsg,
    private readonly logger: LoggerLike,
    private readonly acks: AckBatcher,
  ) {
    const { key, headers } = fromNatsHeaders(msg.headers)
    this.key = key
    this.headers = headers
    this.value = msg.data
    this.redeliveries = Math.max(0, msg.info.redeliveryCount - 1)
  }

  private settle(what: 'ack' | 'nak'): Promise<void> {
    if (!this.settled) {
      this.settled = true
      this.acks.send(this.msg, what)
    }
    return Promise.resolve()
  }

  ack(): Promise<void> {
    return this.settle('ack')
  }

  release(): Promise<void> {
    return this.settle('nak')
  }

  heartbeat(): Promise<void> {
    if (!this.settled) sendAck(this.msg, 'working', this.logger)
    return Promise.resolve()
  }
}

// How long one pull request waits at the server. A fetch is re-issued after it anyway, so a
// consumer whose pull was lost (server restart, consumer re-created) is back within this time.
const PULL_EXPIRES_MS = 5_000
// On close, a pull the server is answering right now gets this long to arrive before we
// unsubscribe (what arrives after that waits for ackWait before it is redelivered).
const CLOSE_GRACE_MS = 100
const MAX_BACKOFF_MS = 2_000

interface PullContext {
  js: JetStreamClient
  jsm: JetStreamManager
  streams: ReturnType<typeof streamRegistry>
  opts: ResolvedNatsOptions
  logger: LoggerLike
  spec: ConsumerSpec
  stream: StreamRef
  info: ConsumerInfo
  window: number
  deliver: DeliveryHandler
  connected: () => boolean
}

/**
 * The pull loop of one subscription: fetch as many messages as there is room for (deliveries
 * not yet settled plus messages asked for and not yet arrived stay under `window`), hand each to
 * the core without waiting, and fetch again as soon as half the window is free, while earlier
 * pulls are still arriving: the server always has a pull to answer, rather than one round trip
 * per window. Every fetch is a new pull request, so the loop needs nothing special after a
 * reconnect; any failure (server away, consumer or stream gone) makes it look the consumer up
 * again, re-create it if it is gone, and go on after a short backoff.
 */
function pullLoop(ctx: PullContext): TransportSubscription {
  const { spec, logger, window } = ctx
  const inFlight = inFlightCounter()
  const unsettled = new Set<number>()
  let consumer: Consumer | undefined = ctx.js.consumers.getPullConsumerFor(ctx.info)
  let consumerName = ctx.info.name
  // Highest stream sequence seen: where a lost consumer's replacement starts.
  let cursor = ctx.info.delivered.stream_seq
  let streamCreated = ctx.stream.created
  // Open pulls, with what each still has to bring; their sum counts against the window.
  const pulls = new Map<ConsumerMessages, Promise<void>>()
  let requested = 0
  let pullFailure: { error: unknown } | undefined
  let closing = false
  const stopped = new AbortController()
  const refill = Math.ceil(window / 2)
  const acks = ackBatcher(logger)

  function take(msg: JsMsg): void {
    if (closing) {
      // Fetched but not handed over: give it back now rather than after ackWait.
      sendAck(msg, 'nak', logger)
      return
    }
    const seq = msg.info.streamSequence
    cursor = Math.max(cursor, seq)
    unsettled.add(seq)
    inFlight.add()
    runDelivery(ctx.deliver, new JetStreamDelivery(spec.topic, msg, logger, acks), logger, () => {
      unsettled.delete(seq)
      inFlight.done()
    })
  }

  async function reattach(): Promise<void> {
    const stream = await ctx.streams.ensure(spec.topic)
    spec.stream = stream.name
    // A replacement starts after the last message seen, or at the oldest one still being
    // handled; in a stream made anew (deleted and re-created), at its start.
    const renewed = stream.created !== streamCreated
    const startSeq = renewed ? 1 : Math.min(cursor + 1, ...unsettled)
    const { info, created } = await ensureConsumer(ctx.jsm, spec, ctx.opts, startSeq)
    if (created) {
      logger.warn({ topic: spec.topic, consumer: info.name, startSeq }, 'nats consumer was gone; re-created it')
    }
    if (renewed) {
      cursor = 0
      streamCreated = stream.created
    }
    consumerName = info.name
    consumer = ctx.js.consumers.getPullConsumerFor(info)
  }

  /** Hands over what one pull brings; a failure is reported to the loop, which starts over. */
  async function drain(pull: ConsumerMessages, asked: number): Promise<void> {
    let arrived = 0
    try {
      for await (const msg of pull) {
        arrived++
        requested--
        take(msg)
      }
    } catch (error) {
      if (!closing) pullFailure ??= { error }
    } finally {
      requested -= asked - arrived
      pulls.delete(pull)
      inFlight.wake()
    }
  }

  async function pullOnce(): Promise<void> {
    await inFlight.until(() => closing || pullFailure !== undefined || window - inFlight.count - requested >= refill)
    if (closing) return
    if (pullFailure) {
      const { error } = pullFailure
      pullFailure = undefined
      throw error
    }
    if (!consumer) await reattach()
    const current = consumer as Consumer
    const asked = window - inFlight.count - requested
    const pull = await current.fetch({ max_messages: asked, expires: PULL_EXPIRES_MS })
    requested += asked
    pulls.set(pull, drain(pull, asked))
  }

  async function onFailure(error: unknown, failures: number): Promise<void> {
    consumer = undefined
    const code = apiErrorCode(error)
    if (code === JS_ERR.streamNotFound) ctx.streams.forget(spec.topic)
    const fields = { topic: spec.topic, consumer: consumerName, err: errorText(error), failures }
    if (failures === 1) logger.warn(fields, 'nats pull failed; retrying')
    else logger.debug(fields, 'nats pull failed again; retrying')
    const pause = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 10))
    await sleep(pause, stopped.signal)
  }

  const running = (async () => {
    let failures = 0
    while (!closing) {
      try {
        await pullOnce()
        if (failures > 0) logger.info({ topic: spec.topic, consumer: consumerName }, 'nats consumer pulling again')
        failures = 0
      } catch (error) {
        if (closing) break
        await onFailure(error, ++failures)
      }
    }
  })()

  let closed: Promise<void> | undefined
  return {
    close() {
      closed ??= (async () => {
        closing = true
        stopped.abort()
        inFlight.wake()
        const open = [...pulls]
        if (open.length > 0) {
          await Promise.race([
            Promise.all(open.map(([pull]) => pull.closed().catch(() => undefined))),
            sleep(CLOSE_GRACE_MS),
          ])
          for (const [pull] of open) pull.stop()
          await Promise.all(open.map(([, drained]) => drained))
        }
        await running
        await inFlight.until(() => inFlight.count === 0)
        // Before the caller's flush round trip, so that it covers every ack.
        acks.flush()
        // While the server is away, leave it to inactiveThreshold rather than wait for a timeout.
        if (spec.durable === undefined && ctx.connected()) {
          await ctx.jsm.consumers.delete(spec.stream, consumerName).catch((error: unknown) => {
            logger.debug({ topic: spec.topic, err: errorText(error) }, 'nats ephemeral consumer not deleted')
          })
        }
      })()
      return closed
    },
  }
}

// ---------------------------------------------------------------- JetStream transport

async function jetStreamClients(nc: NatsConnection, opts: ResolvedNatsOptions) {
  try {
    // The manager checks that JetStream is enabled for the account: fail here, not at first publish.
    const jsm = await nc.jetstreamManager({ timeout: opts.timeout })
    return { jsm, js: nc.jetstream({ timeout: opts.timeout }) }
  } catch (error) {
    await nc.close().catch(() => undefined)
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `JetStream is not available on ${opts.servers.join(', ')} (${errorText(error)}): start nats-server with -js, or leave ?jetstream=true out for core NATS`,
      { cause: error },
    )
  }
}

async function jetStreamTransport(
  nc: NatsConnection,
  opts: ResolvedNatsOptions,
  logger: LoggerLike,
): Promise<Transport> {
  const { jsm, js } = await jetStreamClients(nc, opts)
  const watch = watchConnection(nc, logger)
  const pubAcks = pubAckInbox(nc)
  const streams = streamRegistry(jsm, opts, logger)
  const subscriptions = new Set<TransportSubscription>()
  let closed = false

  function msgId(message: TransportMessage, call: string, index: number): string {
    const id = message.headers['ce-id']
    if (opts.brokerDedupe && id !== undefined) return id
    // Unique to this publish call: de-duplicates only our own retry of it.
    return `${call}.${index}`
  }

  /**
   * Messages until JetStream acknowledges each, all in flight at once, in order on one
   * connection (a batch costs about one round trip). nats.js drops what was buffered while
   * disconnected (each reconnect attempt empties its outbound buffer) and what was on the wire
   * when the server died: after any disconnect or reconnect, what was not acknowledged yet is
   * sent again under the same Nats-Msg-Id, so JetStream stores it once either way (within its
   * duplicate window). A resend can land after later messages of the same batch. Resolves with
   * each message's error, or undefined when it was stored.
   */
  async function publishAll(messages: TransportMessage[], call: string, deadline: number): Promise<unknown[]> {
    const errors: unknown[] = new Array(messages.length).fill(undefined)
    let waiting = messages.map((_, i) => i)
    // 503: no stream holds the subject any more (deleted behind our back): re-created once per message.
    const recreated = new Set<number>()
    while (waiting.length > 0) {
      await watch.whenConnected(deadline, `publish to ${(messages[waiting[0] as number] as TransportMessage).topic}`)
      const change = watch.nextChange()
      const stored = new Set<number>()
      const failed = new Map<number, unknown>()
      const timeout = Math.max(1, deadline - Date.now())
      const group = pubAcks.publish(
        waiting.map((i) => {
          const message = messages[i] as TransportMessage
          return {
            subject: message.topic,
            data: message.value,
            headers: toNatsHeaders(message, msgId(message, call, i)),
          }
        }),
        timeout,
      )
      const acks = group.results.map((acked, k) => {
        const i = waiting[k] as number
        return acked.then(
          () => void stored.add(i),
          (error: unknown) => void failed.set(i, error),
        )
      })
      const outcome = await Promise.race([
        Promise.all(acks).then(() => 'settled' as const),
        change.promise.then(() => 'again' as const),
      ])
      change.cancel()
      // What is still unanswered is sent again below, under new reply subjects.
      group.cancel()
      const again: number[] = []
      const gone: number[] = []
      for (const i of waiting) {
        if (stored.has(i)) continue
        const error = failed.get(i)
        if (error === undefined) {
          // Still unanswered when the connection changed: the resend answers for it.
          if (outcome === 'again') again.push(i)
        } else if (natsCode(error) === '503' && !recreated.has(i)) {
          recreated.add(i)
          gone.push(i)
        } else if (outcome === 'settled' || natsCode(error) !== 'DISCONNECT') {
          errors[i] = error
        } else {
          again.push(i)
        }
      }
      if (gone.length > 0) {
        const topics = new Set(gone.map((i) => (messages[i] as TransportMessage).topic))
        for (const topic of topics) {
          streams.forget(topic)
          try {
            await streams.ensure(topic)
          } catch (error) {
            for (const i of gone) if ((messages[i] as TransportMessage).topic === topic) errors[i] = error
          }
        }
      }
      waiting = [...again, ...gone.filter((i) => errors[i] === undefined)].sort((a, b) => a - b)
    }
    return errors
  }

  async function publish(messages: TransportMessage[]): Promise<void> {
    if (closed) throw closedError()
    const topics = [...new Set(messages.map((m) => m.topic))]
    for (const topic of topics) checkSubjectForPublish(topic)
    await Promise.all(topics.map((topic) => streams.ensure(topic))).catch((error: unknown) => {
      throw publishError(error, topics.join(', '), opts.timeout)
    })
    const errors = await publishAll(messages, randomUUID(), Date.now() + opts.timeout)
    const failed = errors.findIndex((e) => e !== undefined)
    if (failed >= 0) throw publishError(errors[failed], (messages[failed] as TransportMessage).topic, opts.timeout)
  }

  async function subscribe(
    topic: string,
    options: TransportSubscribeOptions,
    deliver: DeliveryHandler,
  ): Promise<TransportSubscription> {
    if (closed) throw closedError()
    checkSubject(topic)
    const stream = await streams.ensure(topic)
    const spec: ConsumerSpec = {
      stream: stream.name,
      topic,
      durable: options.group === undefined ? undefined : consumerNameFor(options.group, topic, stream.ownTopic),
      from: options.from,
    }
    const { info } = await ensureConsumer(jsm, spec, opts, undefined)
    const window = Math.max(2, options.maxInFlight * 2)
    const inner = pullLoop({
      js,
      jsm,
      streams,
      opts,
      logger,
      spec,
      stream,
      info,
      window,
      deliver,
      connected: () => watch.state() === 'connected',
    })
    const subscription: TransportSubscription = {
      async close() {
        await inner.close()
        subscriptions.delete(subscription)
        // Acks are fire-and-forget: make sure they left before the caller moves on.
        if (!nc.isClosed()) await withTimeout(nc.flush(), opts.timeout, 'flushing acks').catch(() => undefined)
      },
    }
    subscriptions.add(subscription)
    return subscription
  }

  return {
    system: 'nats',
    capabilities: { durable: true, replay: true, ordering: 'topic', atLeastOnce: true },
    events: watch.events,
    state: watch.state,
    publish,
    subscribe,
    async close() {
      if (closed) return
      closed = true
      // Bounded: the broker already gave handlers closeTimeoutMs; a handler still running loses
      // its ack with the connection and JetStream redelivers its message.
      const closing = Promise.all([...subscriptions].map((s) => s.close()))
      await withTimeout(closing, opts.timeout, 'closing NATS subscriptions').catch((error: unknown) => {
        logger.warn({ err: errorText(error) }, 'nats: closing without waiting for handlers still running')
      })
      watch.closing()
      await drain(nc, opts.timeout, logger)
    },
  }
}

// ---------------------------------------------------------------- entry points

/** Connects to NATS (core, or JetStream with `jetstream: true`) and returns a transport for createBrokerOver. */
export async function createNatsTransport(options: NatsTransportOptions): Promise<Transport> {
  const opts = parseNatsOptions(options)
  const logger = opts.logger ?? silentLogger
  const nc = await connectTo(opts)
  logger.info({ server: nc.getServer(), jetstream: opts.jetstream }, 'nats connected')
  return opts.jetstream ? jetStreamTransport(nc, opts, logger) : coreTransport(nc, opts, logger)
}

/** For createBroker('nats://...'): the URL's options, then the `nats` broker option over them. */
export async function createTransport(
  url: URL,
  options: { logger: LoggerLike | undefined; settings: Record<string, unknown> },
): Promise<Transport> {
  const fromUrl = natsOptionsFromUrl(url)
  const merged: Record<string, unknown> = { ...fromUrl, ...options.settings }
  if (options.logger !== undefined && merged.logger === undefined) merged.logger = options.logger
  return createNatsTransport(merged as NatsTransportOptions)
}
