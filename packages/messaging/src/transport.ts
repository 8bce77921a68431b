import type { EventEmitter } from 'eventemitter3'

/**
 * The contract between the broker-neutral core and one broker. Adapters move bytes and headers
 * and report acceptance and delivery; everything else (envelope, retries, dead letters, schema
 * checks, de-duplication, tracing, ordering and concurrency limits) lives in the core, once.
 */
export interface TransportMessage {
  topic: string
  key: string | undefined
  /** Lowercase names; values are strings. CloudEvents attributes are `ce-*`. */
  headers: Record<string, string>
  value: Uint8Array
}

export interface TransportDelivery extends TransportMessage {
  /** How many times the broker has delivered this message before (0 on the first delivery), when it knows. */
  readonly redeliveries: number
  /** Processing ended (handled, or dead-lettered): the broker may forget the message for this group. */
  ack(): Promise<void>
  /** Processing did not end (shutdown mid-retry): the broker should deliver it again later. */
  release(): Promise<void>
  /** Processing is still going on: keeps the broker from handing the message to someone else. */
  heartbeat(): Promise<void>
}

export interface TransportSubscribeOptions {
  /** Consumer group; undefined means a subscriber of its own that gets every message (fan-out). */
  group: string | undefined
  from: 'earliest' | 'latest'
  /** How many deliveries the core can take at once; the adapter should not hand over many more. */
  maxInFlight: number
}

/** Called by the adapter for each message; resolves once the core has acked or released it. */
export type DeliveryHandler = (delivery: TransportDelivery) => Promise<void>

export interface TransportSubscription {
  /** Stop fetching, wait for deliveries in progress to be acked or released, then leave. */
  close(): Promise<void>
}

/** A message read back from a topic by `Transport.scan`. */
export interface ScannedMessage extends TransportMessage {
  /**
   * Where the message sits in its topic, stable while the broker keeps it: Kafka
   * `partition:offset`, a JetStream stream sequence, a memory offset.
   */
  readonly position: string
}

export interface TransportScanOptions {
  /** Aborting ends the scan: the iteration throws the signal's reason. */
  signal?: AbortSignal | undefined
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed'

export interface TransportEvents {
  connected: () => void
  disconnected: (error?: Error) => void
  error: (error: Error) => void
}

export interface TransportCapabilities {
  /** Messages survive the broker restarting and wait for subscribers that are away. */
  durable: boolean
  /** Can replay from the start of the topic (`from: 'earliest'`). */
  replay: boolean
  /** What the broker keeps in order: per key (Kafka partitions), per topic, or nothing. */
  ordering: 'key' | 'topic' | 'none'
  /** Redelivers what was not acked: at-least-once. */
  atLeastOnce: boolean
}

export interface Transport {
  /** `messaging.system` in telemetry: 'kafka', 'nats', 'memory'. */
  readonly system: string
  readonly capabilities: TransportCapabilities
  readonly events: EventEmitter<TransportEvents>
  state(): ConnectionState
  /** Resolves when the broker has accepted every message (in order per key). */
  publish(messages: TransportMessage[]): Promise<void>
  subscribe(topic: string, options: TransportSubscribeOptions, deliver: DeliveryHandler): Promise<TransportSubscription>
  /**
   * Optional, for brokers that keep messages: reads `topic` from its oldest kept message to its
   * end as of the call (later messages may or may not come), without joining a consumer group
   * that outlives the scan. A topic that does not exist scans as empty. Dead-letter listing and
   * replay need it; without it they throw `MESSAGING_UNSUPPORTED`.
   */
  scan?(topic: string, options: TransportScanOptions): AsyncIterable<ScannedMessage>
  close(): Promise<void>
}

/** The logger shape adapters and the core accept: pino's, or anything with these methods. */
export { type LoggerLike, silentLogger } from '@backplane/internal'
