import { requireEnv } from '../env.js'
import { hostileInputSuite } from './hostile-input-suite.js'

const url = requireEnv('NATS_URL')
hostileInputSuite('NATS JetStream', { broker: () => `${url}?jetstream=true`, numRuns: 300, slow: 2 })
