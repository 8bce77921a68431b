/**
 * `@backplane/messaging/testing`: the conformance suite every broker adapter passes, for an
 * adapter of your own to run from its vitest file (`vitest`, `@opentelemetry/context-async-hooks`
 * and `@opentelemetry/core` are then needed: optional peer dependencies of this package).
 */
export { brokerConformance, type ConformanceHooks } from './broker-conformance.js'
export { until } from './until.js'
