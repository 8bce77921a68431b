import type { ConsumerConfig, KafkaConfig } from 'kafkajs'
import { defaultSocketFactory, observedSocketFactory } from './connection.js'
import { kafkaLogCreator, kafkaLogLevel } from './logging.js'
import type { KafkaOptions } from './options.js'
import { subscriptionAwareAssigner } from './partitions.js'

export function kafkaConfig(options: KafkaOptions, onSocketError: (error: Error) => void): KafkaConfig {
  const config: KafkaConfig = {
    brokers: options.brokers,
    clientId: options.clientId,
    connectionTimeout: options.connectionTimeout,
    requestTimeout: options.requestTimeout,
    socketFactory: observedSocketFactory(options.socketFactory ?? defaultSocketFactory, onSocketError),
    logLevel: kafkaLogLevel(options),
  }
  if (options.logger) config.logCreator = kafkaLogCreator(options.logger)
  if (options.ssl !== undefined) config.ssl = options.ssl
  if (options.sasl !== undefined) config.sasl = options.sasl
  return config
}

export function consumerConfig(options: KafkaOptions, groupId: string, shouldRestart: () => boolean): ConsumerConfig {
  return {
    groupId,
    sessionTimeout: options.sessionTimeout,
    heartbeatInterval: options.heartbeatInterval ?? Math.min(3_000, Math.floor(options.sessionTimeout / 3)),
    maxWaitTimeInMs: options.maxWaitTime,
    allowAutoTopicCreation: true,
    partitionAssigners: [subscriptionAwareAssigner],
    // Asked by kafkajs before it restarts a consumer that crashed on a retriable error.
    retry: { restartOnFailure: async () => shouldRestart() },
  }
}
