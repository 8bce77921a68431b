import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Broker, LoggerLike, Message, Subscription } from '@backplane/messaging'
import { bridgeMetrics } from './metrics.js'
import type { TopicRef } from './topics.js'

export interface StreamOptions {
  broker: Broker
  ref: TopicRef
  /** With a group, streams share the messages and the group's position is the resume point. */
  group: string | undefined
  from: 'earliest' | 'latest'
  lastEventId: string | undefined
  heartbeatMs: number
  resumeBuffer: number
  logger: LoggerLike
  /** Extra response headers (CORS). */
  headers: Record<string, string>
  /** Streams end when the bridge closes. */
  register(close: () => void): () => void
}

const CORE = new Set(['ce-id', 'ce-source', 'ce-type', 'ce-specversion', 'ce-time', 'ce-partitionkey'])

/** A message in the CloudEvents JSON format, on one line. */
export function toCloudEventJson(message: Message<Uint8Array>): string {
  const h = message.headers
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id: message.id,
    source: h['ce-source'],
    type: h['ce-type'],
    time: h['ce-time'],
  }
  if (message.key !== undefined) event.partitionkey = message.key
  for (const name in h) if (name.startsWith('ce-') && !CORE.has(name)) event[name.slice(3)] = h[name]
  const type = h['content-type']
  if (type !== undefined) event.datacontenttype = type
  const bytes = Buffer.from(message.raw.buffer, message.raw.byteOffset, message.raw.byteLength)
  if (type === undefined || type.includes('json')) {
    try {
      event.data = JSON.parse(bytes.toString('utf8'))
    } catch {
      event.data_base64 = bytes.toString('base64')
    }
  } else if (type.startsWith('text/')) event.data = bytes.toString('utf8')
  else event.data_base64 = bytes.toString('base64')
  try {
    return JSON.stringify(event)
  } catch {
    // Nested too deep for JSON.stringify: only a publisher that went around the bridge (and its
    // limits.jsonDepth) can send that. The bytes still go out, as they are.
    delete event.data
    event.data_base64 = bytes.toString('base64')
    return JSON.stringify(event)
  }
}

function eventText(message: Message<Uint8Array>): string {
  return `id: ${message.id.replace(/[\r\n]/g, '')}\ndata: ${toCloudEventJson(message)}\n\n`
}

function gapText(reason: string, detail: string): string {
  return `event: gap\ndata: ${JSON.stringify({ reason, detail })}\n\n`
}

/**
 * `GET /v1/topics/{topic}/events`: Server-Sent Events, one `id:` + `data:` (a CloudEvent as
 * JSON) per message, a `: ping` comment every `heartbeatMs`. The broker subscription is made per
 * stream and closed when the client goes.
 *
 * `Last-Event-ID` (sent by EventSource on reconnect): with a `group`, the group's own position
 * is the resume point. Without one, on a broker that can replay (memory, Kafka, JetStream), the
 * topic is read again from the oldest message kept and the stream continues after that id;
 * messages of the same millisecond as the last one seen may come twice. Where the broker cannot
 * replay (core NATS) or no longer has the id, an `event: gap` says so and the stream goes on
 * with new messages.
 */
export async function streamEvents(
  request: IncomingMessage,
  response: ServerResponse,
  options: StreamOptions,
): Promise<void> {
  const { broker, ref, group, lastEventId } = options
  const capabilities = broker.health().capabilities
  let closed = false
  let opened = false
  let openedResolve: () => void = () => {}
  const openedPromise = new Promise<void>((resolve) => {
    openedResolve = resolve
  })
  let drainWaiters: (() => void)[] = []
  let subscription: Subscription | undefined
  let heartbeat: NodeJS.Timeout | undefined
  const metrics = bridgeMetrics()

  /**
   * Resuming without a group: `scan` reads the replayed backlog (messages no newer than the
   * stream) for the last id, holding what it passes; `found` then sends the backlog from that
   * id's time on (partitions interleave, so order alone cannot tell); `gap` drops the backlog.
   * Messages newer than the stream always go out.
   */
  let resume: 'none' | 'scan' | 'found' | 'gap' = 'none'
  let resumeFrom = 0
  let gap: string | undefined
  const openedAt = Date.now()
  const held: Message<Uint8Array>[] = []
  let from = options.from
  if (lastEventId !== undefined && group === undefined) {
    if (capabilities.replay) {
      resume = 'scan'
      from = 'earliest'
    } else {
      gap = gapText('replay-unavailable', `${broker.health().system} cannot replay: streaming new messages only`)
    }
  }

  const finish = () => {
    if (closed) return
    closed = true
    if (heartbeat) clearInterval(heartbeat)
    for (const wake of drainWaiters) wake()
    drainWaiters = []
    openedResolve()
    unregister()
    if (opened) metrics.sseStreams.add(-1)
    if (!response.writableEnded) response.end()
    subscription?.close().catch((error: unknown) => {
      options.logger.warn({ topic: ref.qualified, err: (error as Error)?.message }, 'SSE subscription close failed')
    })
  }
  const unregister = options.register(finish)
  response.on('close', finish)
  request.on('aborted', finish)

  /** Writes, waiting for the socket to drain: a slow client slows its own subscription only. */
  async function write(text: string): Promise<void> {
    if (closed) throw new Error('the SSE client went away')
    if (response.write(text)) return
    await new Promise<void>((resolve) => {
      drainWaiters.push(resolve)
      response.once('drain', () => {
        drainWaiters = drainWaiters.filter((w) => w !== resolve)
        resolve()
      })
    })
    if (closed) throw new Error('the SSE client went away')
  }

  async function send(message: Message<Uint8Array>): Promise<void> {
    if (!opened) await openedPromise
    if (closed) {
      // In a group, give the message back to the group; alone, nobody else wanted it.
      if (group !== undefined) throw new Error('the SSE client went away')
      return
    }
    if (resume !== 'none') {
      const time = message.publishedAt.getTime()
      if (time > openedAt) {
        if (resume === 'scan') {
          // A message newer than the stream, and the last id never came: it is no longer kept.
          resume = 'gap'
          held.length = 0
          await write(gapText('last-event-id-not-found', `${lastEventId} is no longer kept by the broker`))
        }
      } else if (resume === 'scan') {
        if (message.id !== lastEventId) {
          held.push(message)
          if (held.length > options.resumeBuffer) held.shift()
          return
        }
        resume = 'found'
        resumeFrom = time
        const after = held.filter((m) => m.publishedAt.getTime() >= time)
        held.length = 0
        for (const m of after) await write(eventText(m))
        return
      } else if (resume === 'gap' || time < resumeFrom || message.id === lastEventId) return
    }
    try {
      await write(eventText(message))
    } catch (error) {
      if (group !== undefined) throw error
    }
  }

  try {
    subscription = await broker.subscribe<Uint8Array>(ref.topic, send, {
      ...(group === undefined ? {} : { group }),
      from,
      raw: true,
      // In a group, a message whose write failed goes back to the group (released on close).
      retry: {
        maxAttempts: group !== undefined && capabilities.atLeastOnce ? 2 : 1,
        initialDelay: 60_000,
        maxDelay: 60_000,
        jitter: 'none',
      },
      deadLetter: false,
      concurrency: 1,
    })
  } catch (error) {
    unregister()
    throw error
  }
  if (closed) {
    await subscription.close()
    return
  }
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...options.headers,
  })
  response.write(`retry: 2000\n: ready\n\n${gap ?? ''}`)
  opened = true
  metrics.sseStreams.add(1)
  openedResolve()
  heartbeat = setInterval(() => {
    if (!closed) response.write(': ping\n\n')
  }, options.heartbeatMs)
  heartbeat.unref()
  await new Promise<void>((resolve) => {
    if (closed) resolve()
    else response.once('close', () => resolve())
  })
}
