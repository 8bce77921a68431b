import { z } from 'zod'
import { DLQ } from './consumer.js'
import {
  byTime,
  type DeadLetter,
  readDeadLetter,
  readReplayRecord,
  replayMessage,
  replayRecord,
} from './dead-letters-entry.js'
import {
  type DeadLetterFilter,
  matchesFilter,
  parseDeadLetterFilter,
  parseReplayFilter,
  type ReplayFilter,
} from './dead-letters-filter.js'
import { replayedTopicOf } from './dead-letters-headers.js'
import { MessagingError } from './errors.js'
import { parseOptions } from './options.js'
import type { LoggerLike, ScannedMessage, Transport, TransportMessage } from './transport.js'

/**
 * Reading dead letters back and replaying them, the same way over every broker that can read a
 * topic from its start (`Transport.scan`). A log cannot delete one message, so replays are
 * recorded on a companion topic, `<deadLetterTopic>.redriven`, after each replay was accepted:
 * a crash in between replays that message again (at least once; consumers de-duplicate by id).
 */

const optionsSchema = z.strictObject({
  /** The dead-letter topic the subscriptions of `topic` use: `<topic>.dlq` unless they named another. */
  deadLetterTopic: z.string().min(1).optional(),
  /** Ends every read of this handle when aborted (a request's time limit, say). */
  signal: z.instanceof(AbortSignal).optional(),
})
export type DeadLetterOptions = z.input<typeof optionsSchema>

export interface ReplayOutcome {
  /** Dead letters published again, the oldest first. */
  replayed: number
  /** Matching dead letters left alone: replayed before (use `again: true`). */
  skipped: number
  /** What was replayed, and what was skipped. */
  items: { id: string; position: string; outcome: 'replayed' | 'skipped' }[]
}

export interface DeadLetters {
  readonly topic: string
  readonly deadLetterTopic: string
  /** The dead letters of `topic` that match, the oldest first, each `pending` or `replayed`. */
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>
  /** One dead letter, by position or CloudEvents id (the latest of that id); undefined if none. */
  get(idOrPosition: string): Promise<DeadLetter | undefined>
  /** Publishes the pending dead letters that match to `topic` again; `again: true` replays replayed ones too. */
  replay(filter?: ReplayFilter): Promise<ReplayOutcome>
}

export interface DeadLettersContext {
  transport: Transport
  /** CloudEvents source of the replay records. */
  source: string
  logger: LoggerLike
  assertOpen(): void
}

// Replays then their records go in batches of this many: one round trip each where the broker allows.
const CHUNK = 100

function unsupported(transport: Transport): MessagingError {
  const why = transport.capabilities.replay
    ? 'its adapter cannot read a topic back (no Transport.scan)'
    : 'the broker keeps no messages'
  return new MessagingError(
    'MESSAGING_UNSUPPORTED',
    `dead letters cannot be listed or replayed on this ${transport.system} broker: ${why}; use a broker that keeps messages (memory://, kafka://, nats://…?jetstream=true)`,
  )
}

function scanFailed(topic: string, error: unknown): MessagingError {
  if (MessagingError.is(error)) return error
  return new MessagingError(
    'MESSAGING_SUBSCRIBE_FAILED',
    `reading ${topic} back failed: ${(error as Error)?.message ?? error}`,
    { cause: error },
  )
}

async function scanAll(
  transport: Transport,
  topic: string,
  each: (message: ScannedMessage) => void,
  signal?: AbortSignal,
): Promise<void> {
  const scan = transport.scan?.bind(transport)
  if (!scan) throw unsupported(transport)
  try {
    for await (const message of scan(topic, { signal })) each(message)
  } catch (error) {
    throw scanFailed(topic, error)
  }
}

export function createDeadLetters(ctx: DeadLettersContext, topic: string, raw?: DeadLetterOptions): DeadLetters {
  const options = parseOptions(optionsSchema, raw, 'deadLetters')
  const { transport } = ctx
  const deadLetterTopic = options.deadLetterTopic ?? `${topic}.dlq`
  const recordTopic = replayedTopicOf(deadLetterTopic)

  /** Every dead letter of `topic`, with its status, the oldest first. */
  async function readAll(): Promise<DeadLetter[]> {
    ctx.assertOpen()
    if (!transport.scan) throw unsupported(transport)
    const replays = new Map<string, Date>()
    const scanned: ScannedMessage[] = []
    // Both at once (on Kafka each scan waits for a group join). Each is a snapshot of its topic:
    // a replay made meanwhile may show as pending, never the other way round.
    await Promise.all([
      scanAll(transport, recordTopic, (message) => readReplayRecord(message, replays), options.signal),
      scanAll(
        transport,
        deadLetterTopic,
        // A dead-letter topic may serve several topics: keep only this one's.
        (message) => message.headers[DLQ.topic] === topic && void scanned.push(message),
        options.signal,
      ),
    ])
    const entries: DeadLetter[] = []
    for (const message of scanned) {
      const entry = readDeadLetter(message, topic, replays)
      if (entry) entries.push(entry)
    }
    return entries.sort(byTime)
  }

  async function publish(messages: TransportMessage[], what: string): Promise<void> {
    try {
      await transport.publish(messages)
    } catch (error) {
      throw MessagingError.is(error)
        ? error
        : new MessagingError('MESSAGING_PUBLISH_FAILED', `${what} failed: ${(error as Error)?.message ?? error}`, {
            cause: error,
          })
    }
  }

  return {
    topic,
    deadLetterTopic,

    async list(input) {
      const filter = parseDeadLetterFilter(input)
      const matching = (await readAll()).filter((entry) => matchesFilter(entry, filter))
      return filter.limit === undefined ? matching : matching.slice(0, filter.limit)
    },

    async get(idOrPosition) {
      if (typeof idOrPosition !== 'string' || idOrPosition === '') {
        throw new MessagingError(
          'MESSAGING_INVALID_OPTIONS',
          'deadLetters.get: expected a position or a message id (a non-empty string)',
        )
      }
      const all = await readAll()
      return all.find((e) => e.position === idOrPosition) ?? all.findLast((e) => e.id === idOrPosition)
    },

    async replay(input) {
      const { again, limit, ...filter } = parseReplayFilter(input)
      const matching = (await readAll()).filter((entry) => matchesFilter(entry, filter))
      const skipped = again ? [] : matching.filter((e) => e.status === 'replayed')
      const due = (again ? matching : matching.filter((e) => e.status === 'pending')).slice(0, limit)
      let done = 0
      for (let i = 0; i < due.length; i += CHUNK) {
        ctx.assertOpen()
        const chunk = due.slice(i, i + CHUNK)
        const at = new Date().toISOString()
        const what = `replaying dead letters of ${topic} (${done} of ${due.length} replayed before this batch)`
        // The replays first, then their records: a crash in between replays them again (at least once).
        await publish(
          chunk.map((e) => replayMessage(e, at)),
          what,
        )
        await publish(
          chunk.map((e) => replayRecord(e, at, ctx.source)),
          `${what}: recording the replays on ${recordTopic}`,
        )
        done += chunk.length
      }
      if (due.length > 0) {
        ctx.logger.info(
          { topic, deadLetterTopic, replayed: due.length, skipped: skipped.length },
          'dead letters replayed',
        )
      }
      return {
        replayed: due.length,
        skipped: skipped.length,
        items: [
          ...due.map((e) => ({ id: e.id, position: e.position, outcome: 'replayed' as const })),
          ...skipped.map((e) => ({ id: e.id, position: e.position, outcome: 'skipped' as const })),
        ],
      }
    },
  }
}
