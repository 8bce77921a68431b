import { memoryStore } from '../src/index.js'
import { storeConformance } from './conformance/store-suite.js'

storeConformance('memory', { create: () => memoryStore() })
