import type { IncomingMessage } from 'node:http'
import { type Broker, MessagingError } from '@backplane/messaging'
import { fromBatchEntry, fromBinary, fromPlain, fromStructured, type Outgoing } from './cloudevents.js'
import { BridgeError } from './errors.js'
import { isJsonType, mediaType, parseJson } from './http.js'
import { type Answer, derivedId, fingerprint, IdempotencyCache } from './idempotency.js'
import type { TopicRef } from './topics.js'
import { checkKey } from './wire-rules.js'

export interface PublishContext {
  broker: Broker
  ref: TopicRef
  /** CloudEvents `source` when the request gives none. */
  source: string
  /** Who is publishing: keeps idempotency keys of different callers apart. */
  principal: string
  idempotency: IdempotencyCache
  batchLimit: number
  /** limits.jsonDepth */
  jsonDepth: number
}

/** What a broker failure means to the HTTP caller. */
export function publishFailure(error: unknown, ref: TopicRef): BridgeError {
  if (BridgeError.is(error)) return error
  if (MessagingError.is(error)) {
    if (error.code === 'MESSAGING_INVALID_MESSAGE' || error.code === 'MESSAGING_INVALID_OPTIONS') {
      return new BridgeError(400, 'INVALID_REQUEST', error.message, { details: error.details })
    }
    return new BridgeError(
      503,
      'BROKER_UNAVAILABLE',
      `broker ${ref.broker} did not accept the message for ${ref.topic}: ${error.message}. Nothing was published: retry (with the same Idempotency-Key, if you sent one)`,
      { cause: error },
    )
  }
  return new BridgeError(
    503,
    'BROKER_UNAVAILABLE',
    `publish to ${ref.qualified} failed: ${(error as Error)?.message ?? error}`,
    {
      cause: error,
    },
  )
}

function withSource(message: Outgoing, source: string): Outgoing {
  if (message.options.source === undefined) message.options.source = source
  return message
}

function idempotencyKey(request: IncomingMessage): string | undefined {
  const key = request.headers['idempotency-key']
  if (key === undefined) return undefined
  const text = Array.isArray(key) ? (key[0] ?? '') : key
  IdempotencyCache.checkKey(text)
  return text
}

/** `POST /v1/topics/{topic}`: one message, answered `202 { id }`. */
export function publishOne(
  ctx: PublishContext,
  request: IncomingMessage,
  body: Buffer,
  query: URLSearchParams | undefined,
): Promise<Answer> {
  const type = mediaType(request)
  let message: Outgoing
  if (type === 'application/cloudevents+json') message = fromStructured(parseJson(body, ctx.jsonDepth))
  else if (type === 'application/cloudevents-batch+json') {
    throw new BridgeError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `a CloudEvents batch goes to POST /v1/topics/${ctx.ref.topic}/batch`,
    )
  } else if (request.headers['ce-specversion'] !== undefined) message = fromBinary(request, body, type, ctx.jsonDepth)
  else message = fromPlain(request, body, type, ctx.jsonDepth)
  withSource(message, ctx.source)
  const key = query?.get('key')
  if (key) message.options.key = checkKey('query parameter key', key)

  const send = async (): Promise<Answer> => {
    try {
      const { id } = await ctx.broker.publish(ctx.ref.topic, message.data, message.options)
      return { status: 202, body: { id } }
    } catch (error) {
      throw publishFailure(error, ctx.ref)
    }
  }
  const idemKey = idempotencyKey(request)
  if (idemKey === undefined) return send()
  message.options.id ??= derivedId(ctx.principal, ctx.ref.qualified, idemKey)
  return ctx.idempotency.run(
    `${ctx.principal}\u0000${ctx.ref.qualified}`,
    idemKey,
    fingerprint('one', request.headers['content-type'] ?? '', key ?? '', ceHeaders(request), body),
    send,
  )
}

function ceHeaders(request: IncomingMessage): string {
  let text = ''
  for (const name in request.headers) if (name.startsWith('ce-')) text += `${name}=${request.headers[name]}\n`
  return text
}

type BatchResult =
  | { index: number; status: 202; id: string }
  | { index: number; status: number; error: { code: string; message: string; details: readonly string[] } }

/**
 * `POST /v1/topics/{topic}/batch`: `{ messages: [...] }` (or a bare array) as JSON, or a
 * CloudEvents batch (`application/cloudevents-batch+json`). Valid entries are published together
 * (one round trip where the broker allows); the answer lists, per entry, `202` and its id or the
 * error. 202 when all were accepted, 207 when some were, else the status of the failure (400, 503).
 */
export function publishBatch(ctx: PublishContext, request: IncomingMessage, body: Buffer): Promise<Answer> {
  const type = mediaType(request)
  if (type === undefined || (!isJsonType(type) && type !== 'application/cloudevents-batch+json')) {
    throw new BridgeError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `a batch is application/json ({ "messages": [...] }) or application/cloudevents-batch+json, not ${type ?? 'without Content-Type'}`,
    )
  }
  const parsed = parseJson(body, ctx.jsonDepth)
  const structured = type === 'application/cloudevents-batch+json'
  const entries = Array.isArray(parsed)
    ? parsed
    : !structured &&
        typeof parsed === 'object' &&
        parsed !== null &&
        Array.isArray((parsed as { messages?: unknown }).messages)
      ? ((parsed as { messages: unknown[] }).messages as unknown[])
      : undefined
  if (entries === undefined) {
    throw new BridgeError(
      400,
      'INVALID_REQUEST',
      structured
        ? 'a CloudEvents batch is a JSON array of events'
        : 'expected { "messages": [ { "data": ... }, ... ] }',
    )
  }
  if (entries.length === 0) throw new BridgeError(400, 'INVALID_REQUEST', 'the batch is empty')
  if (entries.length > ctx.batchLimit) {
    throw new BridgeError(
      413,
      'BATCH_TOO_LARGE',
      `the batch has ${entries.length} messages; the limit is ${ctx.batchLimit} (limits.batchMessages)`,
    )
  }
  const idemKey = idempotencyKey(request)
  const results: BatchResult[] = new Array(entries.length)
  const valid: { index: number; message: Outgoing }[] = []
  entries.forEach((entry, index) => {
    try {
      const message = withSource(
        structured ? fromStructured(entry, `[${index}]`) : fromBatchEntry(entry, index),
        ctx.source,
      )
      if (idemKey !== undefined)
        message.options.id ??= derivedId(ctx.principal, ctx.ref.qualified, idemKey, String(index))
      valid.push({ index, message })
    } catch (error) {
      const e = BridgeError.is(error) ? error : new BridgeError(400, 'INVALID_REQUEST', String(error))
      results[index] = { index, status: e.status, error: e.toJSON().error }
    }
  })

  const send = async (): Promise<Answer> => {
    let failure: BridgeError | undefined
    if (valid.length > 0) {
      try {
        const ids = await ctx.broker.publishBatch(
          ctx.ref.topic,
          valid.map(({ message }) => ({ data: message.data, ...message.options })),
        )
        valid.forEach(({ index }, i) => {
          results[index] = { index, status: 202, id: ids[i]?.id as string }
        })
      } catch (error) {
        failure = publishFailure(error, ctx.ref)
        for (const { index } of valid) results[index] = { index, status: failure.status, error: failure.toJSON().error }
      }
    }
    const accepted = results.filter((r) => r.status === 202).length
    const status = accepted === results.length ? 202 : accepted > 0 ? 207 : (failure?.status ?? 400)
    return { status, body: { accepted, rejected: results.length - accepted, results } }
  }
  if (idemKey === undefined) return send()
  return ctx.idempotency.run(
    `${ctx.principal}\u0000${ctx.ref.qualified}`,
    idemKey,
    fingerprint('batch', request.headers['content-type'] ?? '', body),
    send,
  )
}
