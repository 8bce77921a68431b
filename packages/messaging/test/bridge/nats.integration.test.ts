import { requireEnv } from '../env.js'
import { bridgeScenarios } from './scenarios.js'

const url = requireEnv('NATS_URL')
bridgeScenarios('NATS JetStream', { broker: () => `${url}?jetstream=true`, slow: 2, concurrent: true })
