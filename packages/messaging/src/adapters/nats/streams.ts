import { type LoggerLike, MessagingError } from '@backplane/messaging'
import { type JetStreamManager, StorageType, type StreamConfig } from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { apiErrorCode, JS_ERR } from './errors.js'
import { streamNameFor } from './names.js'
import type { ResolvedNatsOptions } from './options.js'

export interface StreamRef {
  name: string
  /** Created for this topic alone (so consumer names need not mention the topic). */
  ownTopic: boolean
  /** When the stream was created: a different value later means it was deleted and made anew. */
  created: string
}

function streamConfig(opts: ResolvedNatsOptions, name: string, topic: string) {
  const config: Partial<StreamConfig> & { name: string } = {
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
export function streamRegistry(jsm: JetStreamManager, opts: ResolvedNatsOptions, logger: LoggerLike) {
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

export type StreamRegistry = ReturnType<typeof streamRegistry>
