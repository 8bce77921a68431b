import { randomUUID } from 'node:crypto'
import { hostileInputSuite } from './hostile-input-suite.js'

hostileInputSuite('memory', { broker: () => `memory://hostile-${randomUUID().slice(0, 8)}`, numRuns: 300 })
