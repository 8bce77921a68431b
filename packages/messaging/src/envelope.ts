import { REPLAY } from './dead-letters-headers.js'
import type { TransportMessage } from './transport.js'
import { randomUUID } from './uuid.js'

/** CloudEvents 1.0 binary mode: attributes travel as `ce-*` headers, the data as the body. */
export const CE = {
  id: 'ce-id',
  source: 'ce-source',
  type: 'ce-type',
  specversion: 'ce-specversion',
  time: 'ce-time',
  contentType: 'content-type',
} as const

/**
 * When the message was published, set only when the publisher gave the event's own `time`
 * (which stays in `ce-time`): `publishedAt` reads it, so a backdated event is not taken for an
 * old message by whatever orders or skips messages by publish time. The core's own header: set
 * or removed on every publish, never copied from the publisher's headers.
 */
export const PUBLISHED = 'backplane-published'

const JSON_TYPE = 'application/json'
const BYTES_TYPE = 'application/octet-stream'

/** A message as a handler sees it. */
export interface Message<T = unknown> {
  /** CloudEvents `id`; with `source`, the de-duplication key. */
  readonly id: string
  readonly topic: string
  readonly key: string | undefined
  /** Decoded data: parsed JSON, or the bytes when the message is not JSON. */
  readonly data: T
  /** Every header: CloudEvents `ce-*`, `content-type`, trace context and the publisher's own. */
  readonly headers: Readonly<Record<string, string>>
  /** 1 on the first attempt, counting retries and the broker's redeliveries. */
  readonly attempt: number
  /** When it was published: `ce-time`, or `backplane-published` when the publisher set `time`. */
  readonly publishedAt: Date
  /** The body exactly as it travelled. */
  readonly raw: Uint8Array
}

export interface EnvelopeOptions {
  key?: string | undefined
  headers?: Record<string, string> | undefined
  id?: string | undefined
  /** CloudEvents `type`; defaults to the topic name. */
  type?: string | undefined
  /** CloudEvents `source`; defaults to the broker's `source` option. */
  source?: string | undefined
  contentType?: string | undefined
  /** CloudEvents `time`, the event's; the publish time then goes in `backplane-published`. */
  time?: string | undefined
}

// toISOString costs more than the rest of the envelope: many messages share a millisecond.
let lastTimeMs = 0
let lastTimeText = ''
function isoNow(): string {
  const now = Date.now()
  if (now !== lastTimeMs) {
    lastTimeMs = now
    lastTimeText = new Date(now).toISOString()
  }
  return lastTimeText
}

/**
 * Builds the transport message: user headers first, then the CloudEvents attributes, which win,
 * and `backplane-published` when `time` is given (removed from the user headers otherwise).
 * The headers are one object literal when the publisher gave none (the common case): V8 then
 * makes it in one allocation with its properties inside it, where adding them one by one grows
 * it twice. It matters because a broker that queues messages keeps every one of these alive.
 */
export function encodeMessage(
  topic: string,
  data: unknown,
  source: string,
  options: EnvelopeOptions = {},
): TransportMessage {
  let value: Uint8Array
  let contentType = options.contentType
  if (data instanceof Uint8Array) {
    value = data
    contentType ??= BYTES_TYPE
  } else if (typeof data === 'string' && contentType !== undefined && !contentType.includes('json')) {
    value = Buffer.from(data)
  } else {
    value = Buffer.from(JSON.stringify(data) ?? 'null')
    contentType ??= JSON_TYPE
  }
  const id = options.id ?? randomUUID()
  const time = options.time
  let headers: Record<string, string>
  if (options.headers === undefined) {
    headers =
      time === undefined
        ? {
            'ce-id': id,
            'ce-source': options.source ?? source,
            'ce-type': options.type ?? topic,
            'ce-specversion': '1.0',
            'ce-time': isoNow(),
            'content-type': contentType,
          }
        : {
            'ce-id': id,
            'ce-source': options.source ?? source,
            'ce-type': options.type ?? topic,
            'ce-specversion': '1.0',
            'ce-time': time,
            'content-type': contentType,
            'backplane-published': isoNow(), // PUBLISHED
          }
  } else {
    headers = {}
    for (const name in options.headers) headers[name.toLowerCase()] = String(options.headers[name])
    headers[CE.id] = id
    headers[CE.source] = options.source ?? source
    headers[CE.type] = options.type ?? topic
    headers[CE.specversion] = '1.0'
    headers[CE.time] = time ?? isoNow()
    headers[CE.contentType] = contentType
    if (time !== undefined) headers[PUBLISHED] = isoNow()
    // Copied from a message received (a republish): its publish time is not this one's.
    else if (headers[PUBLISHED] !== undefined) delete headers[PUBLISHED]
    // Nor is a replay's target group: the copy goes to every group of its own topic.
    if (headers[REPLAY.group] !== undefined) delete headers[REPLAY.group]
  }
  return { topic, key: options.key, headers, value }
}

/** JSON bodies are parsed; anything else is handed over as bytes. Throws on malformed JSON. */
export function decodeBody(message: TransportMessage): unknown {
  const type = message.headers[CE.contentType]
  if (type === undefined || type.includes('json')) return JSON.parse(utf8(message.value))
  if (type.startsWith('text/')) return utf8(message.value)
  return message.value
}

function utf8(bytes: Uint8Array): string {
  // A view, not a copy: Buffer.from(uint8Array) would copy every body once more.
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  // No argument: UTF-8 without looking the encoding up by name, once per message.
  return buffer.toString()
}

export function messageId(message: TransportMessage): string {
  return message.headers[CE.id] ?? ''
}

/** The key de-duplication remembers: CloudEvents says `source` + `id` identify an event. */
export function dedupeKey(message: TransportMessage): string {
  return `${message.headers[CE.source] ?? ''}\u0000${message.headers[CE.id] ?? ''}`
}

/** `backplane-published` when the publisher set the event's `time`, else `ce-time`. */
export function publishedAt(message: TransportMessage): Date {
  const time = message.headers[PUBLISHED] ?? message.headers[CE.time]
  const parsed = time === undefined ? Number.NaN : Date.parse(time)
  return new Date(Number.isNaN(parsed) ? Date.now() : parsed)
}
