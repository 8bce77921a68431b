import type { IncomingMessage } from 'node:http'
import type { PublishOptions } from '@backplane/messaging'
import { z } from 'zod'
import { BridgeError, issueLines } from './errors.js'
import { isJsonType, parseJson } from './http.js'
import {
  checkAttribute,
  checkAttributeName,
  checkHeader,
  checkHeaderValue,
  checkKey,
  checkTime,
  decodeHeaderValue,
} from './wire-rules.js'

/** What one message to publish is made of: `data` for broker.publish, and its options. */
export interface Outgoing {
  data: unknown
  options: PublishOptions & { headers: Record<string, string> }
}

/** CloudEvents attributes the core sets from publish options (`time`: the client's, else now). */
const CORE_ATTRIBUTES = new Set(['ce-id', 'ce-source', 'ce-type', 'ce-specversion', 'ce-time'])
const JSON_TYPE = 'application/json'

function invalid(message: string, details?: string[]): BridgeError {
  return new BridgeError(400, 'INVALID_CLOUDEVENT', message, { details })
}

/** The text a `ce-*` request header encodes (binding 3.1.3.2). */
function headerText(request: IncomingMessage, name: string): string {
  const value = request.headers[name]
  return decodeHeaderValue(`header ${name}`, Array.isArray(value) ? value.join(', ') : (value as string))
}

/** A `ce-*` request header as the attribute value it encodes. */
function headerAttribute(request: IncomingMessage, name: string): string {
  return checkAttribute(`header ${name}`, headerText(request, name))
}

/** CloudEvents HTTP binary mode: attributes in `ce-*` headers, data in the body. */
export function fromBinary(
  request: IncomingMessage,
  body: Buffer,
  contentType: string | undefined,
  jsonDepth: number,
): Outgoing {
  const h = request.headers
  if (h['ce-specversion'] !== '1.0') {
    throw invalid(`ce-specversion: expected "1.0", got ${JSON.stringify(h['ce-specversion'])}`)
  }
  const missing = ['ce-id', 'ce-source', 'ce-type'].filter((name) => typeof h[name] !== 'string' || h[name] === '')
  if (missing.length > 0) throw invalid(`a binary-mode CloudEvent needs the headers ${missing.join(', ')}`)
  const headers: Record<string, string> = {}
  let key: string | undefined
  for (const name in h) {
    if (!name.startsWith('ce-') || CORE_ATTRIBUTES.has(name)) continue
    const attribute = checkAttributeName(`header ${name}`, name.slice(3))
    const text = headerAttribute(request, name)
    if (attribute === 'partitionkey') key = checkKey(`header ${name}`, text)
    else headers[name] = text
  }
  const options: Outgoing['options'] = {
    id: headerAttribute(request, 'ce-id'),
    source: headerAttribute(request, 'ce-source'),
    type: headerAttribute(request, 'ce-type'),
    headers,
  }
  if (h['ce-time'] !== undefined) options.time = checkTime('header ce-time', headerText(request, 'ce-time'))
  if (key !== undefined) options.key = key
  if (contentType === undefined) {
    // CloudEvents allow an event without data.
    if (body.length > 0) throw unsupportedType()
    return { data: null, options }
  }
  return { data: bodyData(body, contentType, request.headers['content-type'] as string, options, jsonDepth), options }
}

export function unsupportedType(): BridgeError {
  return new BridgeError(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    'missing Content-Type: send application/json, application/cloudevents+json, or the media type of your data',
  )
}

/** JSON is checked (400 on malformed JSON) and sent as the bytes received; anything else as bytes with its type. */
function bodyData(
  body: Buffer,
  type: string,
  fullType: string,
  options: Outgoing['options'],
  jsonDepth: number,
): unknown {
  options.contentType = checkHeaderValue('header content-type', fullType)
  if (isJsonType(type)) {
    if (body.length === 0)
      throw new BridgeError(400, 'INVALID_JSON', `the body is empty, but Content-Type says ${type}`)
    parseJson(body, jsonDepth)
  }
  return body
}

/** A plain body: JSON or any media type. */
export function fromPlain(
  request: IncomingMessage,
  body: Buffer,
  contentType: string | undefined,
  jsonDepth: number,
): Outgoing {
  if (contentType === undefined) throw unsupportedType()
  const options: Outgoing['options'] = { headers: {} }
  return {
    data: bodyData(body, contentType, request.headers['content-type'] as string, options, jsonDepth),
    options,
  }
}

const structuredSchema = z.looseObject({
  specversion: z.literal('1.0', { error: 'expected "1.0"' }),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  datacontenttype: z.string().min(1).optional(),
  dataschema: z.string().min(1).optional(),
  subject: z.string().min(1).optional(),
  time: z.string().optional(),
  data: z.unknown().optional(),
  data_base64: z.string().optional(),
})

const STRUCTURED_KNOWN = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'datacontenttype',
  'time',
  'data',
  'data_base64',
])

/** CloudEvents JSON format (structured mode): one event as a JSON object. */
export function fromStructured(value: unknown, where = '(body)'): Outgoing {
  const parsed = structuredSchema.safeParse(value)
  if (!parsed.success) {
    const details = issueLines(parsed.error.issues, where)
    throw invalid(`not a CloudEvent: ${details.join('; ')}`, details)
  }
  const event = parsed.data
  const at = (name: string) => (where === '(body)' ? name : `${where}.${name}`)
  const headers: Record<string, string> = {}
  let key: string | undefined
  for (const [name, attribute] of Object.entries(event)) {
    if (STRUCTURED_KNOWN.has(name)) continue
    checkAttributeName(at(name), name)
    if (typeof attribute !== 'string' && typeof attribute !== 'number' && typeof attribute !== 'boolean') {
      throw invalid(`${at(name)}: an extension attribute must be a string, number or boolean`)
    }
    if (name === 'partitionkey') key = checkKey(at(name), String(attribute))
    else headers[`ce-${name}`] = checkAttribute(at(name), String(attribute))
  }
  const options: Outgoing['options'] = {
    id: checkAttribute(at('id'), event.id),
    source: checkAttribute(at('source'), event.source),
    type: checkAttribute(at('type'), event.type),
    headers,
  }
  if (event.time !== undefined) options.time = checkTime(at('time'), event.time)
  if (event.datacontenttype !== undefined) checkHeaderValue(at('datacontenttype'), event.datacontenttype)
  if (key !== undefined) options.key = key
  if (event.data_base64 !== undefined) {
    if (event.data !== undefined) throw invalid('give `data` or `data_base64`, not both')
    options.contentType = event.datacontenttype ?? 'application/octet-stream'
    return { data: Buffer.from(event.data_base64, 'base64'), options }
  }
  const contentType = event.datacontenttype ?? JSON_TYPE
  options.contentType = contentType
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? ''
  if (event.data === undefined) return { data: null, options: { ...options, contentType: JSON_TYPE } }
  if (isJsonType(essence)) return { data: event.data, options }
  if (typeof event.data === 'string') return { data: event.data, options }
  throw invalid(`data: with datacontenttype ${contentType}, data must be a string (or use data_base64)`)
}

const headerName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'header names are lowercase letters, digits, _ . -')
  .refine(
    (name) => name !== 'content-type' && name !== 'traceparent' && name !== 'tracestate' && !CORE_ATTRIBUTES.has(name),
    'reserved header: use the message fields (id, type, source, contentType) instead',
  )
  .refine((name) => !name.startsWith('backplane-'), 'backplane-* headers are reserved')

const batchEntrySchema = z.strictObject({
  data: z.unknown().optional(),
  data_base64: z.string().optional(),
  key: z.string().min(1).optional(),
  id: z.string().min(1).optional(),
  type: z.string().min(1).optional(),
  source: z.string().min(1).optional(),
  contentType: z.string().min(1).optional(),
  headers: z.record(headerName, z.string()).optional(),
})

/** One entry of a JSON batch: `{ data | data_base64, key?, id?, type?, source?, contentType?, headers? }`. */
export function fromBatchEntry(value: unknown, index: number): Outgoing {
  const parsed = batchEntrySchema.safeParse(value)
  if (!parsed.success) {
    const details = issueLines(parsed.error.issues, `messages[${index}]`)
    throw new BridgeError(400, 'INVALID_REQUEST', details.join('; '), { details })
  }
  const e = parsed.data
  const at = (name: string) => `messages[${index}].${name}`
  const headers = e.headers ?? {}
  for (const name in headers) checkHeader(`${at('headers')}.${name}`, name, headers[name] as string)
  const options: Outgoing['options'] = { headers }
  if (e.key !== undefined) options.key = checkKey(at('key'), e.key)
  if (e.id !== undefined) options.id = checkAttribute(at('id'), e.id)
  if (e.type !== undefined) options.type = checkAttribute(at('type'), e.type)
  if (e.source !== undefined) options.source = checkAttribute(at('source'), e.source)
  if (e.contentType !== undefined) checkHeaderValue(at('contentType'), e.contentType)
  if (e.data_base64 !== undefined) {
    if (e.data !== undefined)
      throw new BridgeError(400, 'INVALID_REQUEST', `messages[${index}]: give data or data_base64, not both`)
    options.contentType = e.contentType ?? 'application/octet-stream'
    return { data: Buffer.from(e.data_base64, 'base64'), options }
  }
  const contentType = e.contentType ?? JSON_TYPE
  options.contentType = contentType
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? ''
  if (isJsonType(essence)) return { data: e.data ?? null, options }
  if (typeof e.data === 'string') return { data: e.data, options }
  throw new BridgeError(
    400,
    'INVALID_REQUEST',
    `messages[${index}].data: with contentType ${contentType}, data must be a string (or use data_base64)`,
  )
}
