import { randomUUID } from 'node:crypto'
import type { BrokerMessage, WorkflowBroker } from '../types.js'

export interface PublishedMessage {
  readonly topic: string
  readonly data: unknown
  readonly id?: string | undefined
  readonly key?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** A broker for tests: keeps what the engine publishes, and hands `deliver`ed messages to `listen`. */
export interface RecordingBroker extends WorkflowBroker {
  /** Every message published, in order (the outbox of every instance). */
  readonly published: readonly PublishedMessage[]
  /** Delivers a message to the subscriptions on `topic` (what `engine.listen` subscribed) and waits for them. */
  deliver(
    topic: string,
    data: unknown,
    options?: { id?: string; key?: string; headers?: Record<string, string> },
  ): Promise<void>
}

export function recordingBroker(): RecordingBroker {
  const published: PublishedMessage[] = []
  const handlers = new Map<string, Set<(message: BrokerMessage) => Promise<void>>>()
  return {
    published,
    async publish(topic, data, options = {}) {
      published.push({ topic, data, ...options })
      return { id: options.id }
    },
    async subscribe(topic, handler) {
      const set = handlers.get(topic) ?? new Set()
      handlers.set(topic, set)
      set.add(handler)
      return {
        close: async () => {
          set.delete(handler)
        },
      }
    },
    async deliver(topic, data, options = {}) {
      const message: BrokerMessage = {
        id: options.id ?? randomUUID(),
        topic,
        key: options.key,
        data,
        headers: options.headers ?? {},
      }
      await Promise.all([...(handlers.get(topic) ?? [])].map((handler) => handler(message)))
    },
  }
}
