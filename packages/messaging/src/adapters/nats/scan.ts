import type { ScannedMessage } from '@backplane/messaging'
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { fromNatsHeaders } from './headers.js'

/**
 * Reads a subject of a JetStream stream from its first kept message to its last one as of the
 * call, through an ordered consumer (ephemeral, no acks, removed at the end and by the server
 * when idle), with the nats.js v3 API (`@nats-io/jetstream`). The end is the subject's last
 * sequence when the scan starts; it also stops when the consumer has nothing pending (messages
 * removed meanwhile by limits). A subject no stream holds, or a stream without it, scans as
 * empty. Positions are stream sequences.
 */
export interface JetStreamScan {
  js: JetStreamClient
  jsm: JetStreamManager
  subject: string
  /** The stream holding `subject`; looked up by subject when left out. */
  stream?: string | undefined
  signal?: AbortSignal | undefined
  /** Messages fetched per request. */
  batch?: number
  /** How long one fetch waits for messages before the scan takes the stream as read. */
  fetchWait?: number
}

const NOT_FOUND = 10059 // JetStreamApiCodes.StreamNotFound

function notFound(error: unknown): boolean {
  return (error as { code?: unknown })?.code === NOT_FOUND
}

async function streamOf(jsm: JetStreamManager, subject: string): Promise<string | undefined> {
  try {
    return await jsm.streams.find(subject)
  } catch {
    // No stream holds the subject: nothing was ever stored for it.
    return undefined
  }
}

/** The subject's last stream sequence now, or undefined when the stream holds none of it. */
async function lastSequence(jsm: JetStreamManager, stream: string, subject: string): Promise<number | undefined> {
  try {
    const last = await jsm.streams.getMessage(stream, { last_by_subj: subject })
    return last?.seq
  } catch (error) {
    if (notFound(error)) return undefined
    throw error
  }
}

export async function* scanJetStream(scan: JetStreamScan): AsyncGenerator<ScannedMessage> {
  const { js, jsm, subject, signal } = scan
  signal?.throwIfAborted()
  const stream = scan.stream ?? (await streamOf(jsm, subject))
  if (stream === undefined) return
  const end = await lastSequence(jsm, stream, subject)
  if (end === undefined) return
  const consumer = await js.consumers.get(stream, { filter_subjects: subject, deliver_policy: 'all' })
  try {
    for (;;) {
      signal?.throwIfAborted()
      const messages = await consumer.fetch({ max_messages: scan.batch ?? 256, expires: scan.fetchWait ?? 2_000 })
      let got = 0
      for await (const m of messages) {
        got++
        if (m.seq > end) return
        const { key, headers } = fromNatsHeaders(m.headers)
        yield { topic: subject, key, headers, value: m.data, position: String(m.seq) }
        if (m.seq === end || m.info.pending === 0) return
        signal?.throwIfAborted()
      }
      // Nothing came within fetchWait: what was up to `end` is gone (limits, deletes).
      if (got === 0) return
    }
  } finally {
    await consumer.delete().catch(() => undefined)
  }
}
