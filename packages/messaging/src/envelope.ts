import { randomUUID } from 'node:crypto'
import type { TransportMessage } from './transport.js'

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

function encodeBody(data: unknown, contentType: string | undefined): { value: Uint8Array; contentType: string } {
  if (data instanceof Uint8Array) return { value: data, contentType: contentType ?? BYTES_TYPE }
  if (typeof data === 'string' && contentType !== undefined && !contentType.includes('json')) {
    return { value: Buffer.from(data), contentType }
  }
  return { value: Buffer.from(JSON.stringify(data) ?? 'null'), contentType: contentType ?? JSON_TYPE }
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

/** Builds the transport message: user headers first, then the CloudEvents attributes, which win. */
export function encodeMessage(
  topic: string,
  data: unknown,
  source: string,
  options: EnvelopeOptions = {},
): TransportMessage {
  const body = encodeBody(data, options.contentType)
  const headers: Record<string, string> = {}
  if (options.headers) for (const name in options.headers) headers[name.toLowerCase()] = String(options.headers[name])
  headers[CE.id] = options.id ?? randomUUID()
  headers[CE.source] = options.source ?? source
  headers[CE.type] = options.type ?? topic
  headers[CE.specversion] = '1.0'
  headers[CE.time] = options.time ?? isoNow()
  headers[CE.contentType] = body.contentType
  return { topic, key: options.key, headers, value: body.value }
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
