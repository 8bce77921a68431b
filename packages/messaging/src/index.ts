export type { Duration, RetryOptions } from '@backplane/internal'
export type { BatchMessage, Broker, BrokerEvents, BrokerHealth, PublishResult, Subscription } from './broker.js'
export { createBrokerOver } from './broker.js'
export type { DeadLetterEvent, DeadLetterReason, Handler } from './consumer.js'
export { DLQ } from './consumer.js'
export type { AdapterModule } from './create-broker.js'
export { createBroker } from './create-broker.js'
export type { DeadLetterOptions, DeadLetters, ReplayOutcome } from './dead-letters.js'
export type { DeadLetter, DeadLetterStatus } from './dead-letters-entry.js'
export type { DeadLetterFilter, ReplayFilter } from './dead-letters-filter.js'
export { REPLAY } from './dead-letters-headers.js'
export { type DedupeStore, memoryDedupeStore } from './dedupe.js'
export type { Message } from './envelope.js'
export { MessagingError, type MessagingErrorCode, NonRetryableError, RetryAfterError } from './errors.js'
export type { BrokerOptions, PublishOptions, SubscribeOptions } from './options.js'
export { defineTopic, type Topic } from './topic.js'
export type {
  ConnectionState,
  DeliveryHandler,
  LoggerLike,
  ScannedMessage,
  Transport,
  TransportCapabilities,
  TransportDelivery,
  TransportEvents,
  TransportMessage,
  TransportScanOptions,
  TransportSubscribeOptions,
  TransportSubscription,
} from './transport.js'
export { silentLogger } from './transport.js'
