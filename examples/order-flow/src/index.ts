// What the benchmark (bench/flow) and other tools use to drive the flow from outside.
export { type FlowEnvironment, type FlowOptions, startFlow } from './flow.js'
export { dropDatabase } from './infra.js'
export { type OrderRun, percentile, startOrderStream } from './load.js'
export { type FlowReport, verifyFlow, verifyFlowSettled } from './verify.js'
