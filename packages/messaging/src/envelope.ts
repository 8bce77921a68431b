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
 * Builds the transport message: user headers first, then the CloudEvents attributes, which win.
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
  const time = options.time ?? isoNow()
  let headers: Record<string, string>
  if (options.headers === undefined) {
    headers = {
      'ce-id': id,
      'ce-source': options.source ?? source,
      'ce-type': options.type ?? topic,
      'ce-specversion': '1.0',
      'ce-time': time,
      'content-type': contentType,
    }
  } else {
    headers = {}
    for (const name in options.headers) headers[name.toLowerCase()] = String(options.headers[name])
    headers[CE.id] = id
    headers[CE.source] = options.source ?? source
    headers[CE.type] = options.type ?? topic
    headers[CE.specversion] = '1.0'
    headers[CE.time] = time
    headers[CE.contentType] = contentType
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
  return buffer.toString('utf8')
}

export function messageId(message: TransportMessage): string {
  return message.headers[CE.id] ?? ''
}

/** The key de-duplication remembers: CloudEvents says `source` + `id` identify an event. */
export function dedupeKey(message: TransportMessage): string {
  return `${message.headers[CE.source] ?? ''}\u0000${message.headers[CE.id] ?? ''}`
}

export function publishedAt(message: TransportMessage): Date {
  const time = message.headers[CE.time]
  const parsed = time === undefined ? Number.NaN : Date.parse(time)
  return new Date(Number.isNaN(parsed) ? Date.now() : parsed)
}
