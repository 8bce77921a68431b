import { randomUUID } from 'node:crypto'
import { createBroker } from '../src/index.js'
import { brokerConformance } from './conformance/broker-suite.js'

brokerConformance('memory', {
  connect: () => createBroker(`memory://conformance-${randomUUID().slice(0, 8)}`),
})
