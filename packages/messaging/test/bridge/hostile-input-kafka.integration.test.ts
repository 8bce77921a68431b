import { requireEnv } from '../env.js'
import { hostileInputSuite } from './hostile-input-suite.js'

const brokers = requireEnv('KAFKA_BROKERS')
hostileInputSuite('Kafka', {
  // Short session and fetch waits: the librdkafka mock answers a fetch only when it expires.
  broker: () => ({ url: `kafka://${brokers}`, kafka: { sessionTimeout: 6000, maxWaitTime: 100 } }),
  numRuns: 300,
  slow: 3,
})
