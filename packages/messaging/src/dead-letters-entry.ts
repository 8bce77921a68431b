import { DLQ } from './consumer.js'
import { REPLAY, REPLAYED_TYPE, replayedTopicOf } from './dead-letters-headers.js'
import { decodeBody, encodeMessage, messageId, PUBLISHED } from './envelope.js'
import type { ScannedMessage, TransportMessage } from './transport.js'

/**
 * Dead letters as read back from their topic, and the messages a replay publishes: pure
 * functions of the scanned messages, so that listing, status and replay are decided in one place
 * for every broker.
 */

export type DeadLetterStatus = 'pending' | 'replayed'

export interface DeadLetter {
  /** Where it sits in the dead-letter topic (Kafka `partition:offset`, JetStream sequence, memory offset). */
  readonly position: string
  /** The message's CloudEvents id, the same as when it was first published. */
  readonly id: string
  /** The topic it failed on, where a replay publishes it again. */
  readonly topic: string
  readonly deadLetterTopic: string
  readonly key: string | undefined
  /** `max-attempts`, `non-retryable`, `schema`, `malformed`, or another producer's reason. */
  readonly reason: string
  /** The last error, `Name: message`. */
  readonly error: string
  readonly attempts: number
  /** The consumer group that failed it; undefined for a plain subscriber. */
  readonly group: string | undefined
  /** When it was dead-lettered. */
  readonly at: Date
  readonly status: DeadLetterStatus
  /** When it was last replayed, if it was. */
  readonly replayedAt: Date | undefined
  /** Its own headers: every header but the `backplane-dlq-*` ones. */
  readonly headers: Readonly<Record<string, string>>
  /** The decoded body (JSON, text), or the bytes when it is not JSON or not valid JSON. */
  readonly data: unknown
  readonly raw: Uint8Array
}

const DLQ_PREFIX = 'backplane-dlq-'

function instant(text: string | undefined): Date {
  const ms = text === undefined ? Number.NaN : Date.parse(text)
  // A dead letter whose time cannot be read sorts first rather than breaking every listing.
  return new Date(Number.isNaN(ms) ? 0 : ms)
}

function decoded(message: TransportMessage): unknown {
  try {
    return decodeBody(message)
  } catch {
    return message.value
  }
}

/** The dead letter a scanned message is, or undefined for one that is not a dead letter of `topic`. */
export function readDeadLetter(
  scanned: ScannedMessage,
  topic: string,
  replays: ReadonlyMap<string, Date>,
): DeadLetter | undefined {
  const all = scanned.headers
  if (all[DLQ.reason] === undefined || all[DLQ.topic] !== topic) return undefined
  const headers: Record<string, string> = {}
  for (const name in all) if (!name.startsWith(DLQ_PREFIX)) headers[name] = all[name] as string
  const replayedAt = replays.get(scanned.position)
  const attempts = Number(all[DLQ.attempts])
  return {
    position: scanned.position,
    id: messageId(scanned),
    topic,
    deadLetterTopic: scanned.topic,
    key: scanned.key,
    reason: all[DLQ.reason] as string,
    error: all[DLQ.error] ?? '',
    attempts: Number.isSafeInteger(attempts) ? attempts : 0,
    group: all[DLQ.group],
    at: instant(all[DLQ.at]),
    status: replayedAt === undefined ? 'pending' : 'replayed',
    replayedAt,
    headers,
    data: decoded(scanned),
    raw: scanned.value,
  }
}

/** Oldest first; positions break ties (`2:15` after `2:9`). */
export function byTime(a: DeadLetter, b: DeadLetter): number {
  return a.at.getTime() - b.at.getTime() || a.position.localeCompare(b.position, 'en', { numeric: true })
}

interface ReplayRecord {
  position: string
  id: string
  replayedAt: string
}

/** Adds a record of the companion topic to `replays` (position -> latest replay), ignoring anything else. */
export function readReplayRecord(scanned: TransportMessage, replays: Map<string, Date>): void {
  if (scanned.headers['ce-type'] !== REPLAYED_TYPE) return
  let record: Partial<ReplayRecord>
  try {
    record = decodeBody(scanned) as Partial<ReplayRecord>
  } catch {
    return
  }
  if (typeof record?.position !== 'string' || typeof record.replayedAt !== 'string') return
  const at = new Date(record.replayedAt)
  if (Number.isNaN(at.getTime())) return
  const known = replays.get(record.position)
  if (known === undefined || known.getTime() < at.getTime()) replays.set(record.position, at)
}

/**
 * The message a replay publishes: the original key, body and headers (its CloudEvents id among
 * them), to its original topic, marked as a replay for the group that failed it. Headers of an
 * earlier replay are replaced; `backplane-published` is the replay's time (a new publication).
 */
export function replayMessage(entry: DeadLetter, at: string): TransportMessage {
  const headers: Record<string, string> = {}
  for (const name in entry.headers) {
    if (name !== REPLAY.from && name !== REPLAY.at && name !== REPLAY.group)
      headers[name] = entry.headers[name] as string
  }
  headers[REPLAY.from] = `${entry.deadLetterTopic}@${entry.position}`
  headers[REPLAY.at] = at
  headers[PUBLISHED] = at
  if (entry.group !== undefined) headers[REPLAY.group] = entry.group
  return { topic: entry.topic, key: entry.key, headers, value: entry.raw }
}

/** The record that a dead letter was replayed, for the companion topic. */
export function replayRecord(entry: DeadLetter, at: string, source: string): TransportMessage {
  const record: ReplayRecord = { position: entry.position, id: entry.id, replayedAt: at }
  return encodeMessage(replayedTopicOf(entry.deadLetterTopic), record, source, {
    key: entry.position,
    type: REPLAYED_TYPE,
  })
}
