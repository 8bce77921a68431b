import { randomUUID } from 'node:crypto'
import { bridgeScenarios } from './scenarios.js'

// One bus for every bridge of the file: a restarted bridge finds what the others published.
const bus = `memory://bridge-${randomUUID().slice(0, 8)}`
bridgeScenarios('memory', { broker: () => bus })
