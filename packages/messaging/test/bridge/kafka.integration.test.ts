import { requireEnv } from '../env.js'
import { bridgeScenarios } from './scenarios.js'

const brokers = requireEnv('KAFKA_BROKERS')
bridgeScenarios('Kafka', {
  // Short session and fetch waits: the librdkafka mock answers a fetch only when it expires.
  broker: () => ({ url: `kafka://${brokers}`, kafka: { sessionTimeout: 6000, maxWaitTime: 100 } }),
  slow: 3,
  concurrent: true,
})
