export type { Duration } from '@backplane/internal'
export { ActivityTimeoutError, NonRetryableError } from './activity-errors.js'
export { type Clock, type ManualClock, manualClock, systemClock } from './clock.js'
export { createEngine } from './engine.js'
export { WorkflowError, type WorkflowErrorCode } from './errors.js'
export {
  type Actions,
  type ActivityErrorInfo,
  type AfterEvent,
  type AnyMachine,
  type ChildDoneEvent,
  type ChildErrorEvent,
  type DoneEvent,
  defineMachine,
  type ErrorEvent,
  type InvokeConfig,
  type Machine,
  type MachineConfig,
  type MachineEvent,
  type MigrationSnapshot,
  type OutboxMessage,
  type RetryPolicy,
  type SpawnConfig,
  type StateConfig,
  type Transition,
  type TransitionConfig,
  type WorkflowEvent,
} from './machine.js'
export { toMermaid } from './mermaid.js'
export type { EngineOptions, LoggerLike } from './options.js'
export { createReader, type Reader, type ReaderOptions } from './reader.js'
export type { Schedule, ScheduleOptions } from './schedule-spec.js'
// What apps see of the store: the type `createEngine({ store })` takes and the types of `Instance`,
// `HistoryEntry` and `list`. Everything a store author needs is in @backplane/workflow/store.
export type { CountFilter, HistoryKind, InstanceCount, InstanceStatus, ListFilter, Store } from './store.js'
export { memoryStore } from './stores/memory.js'
export type {
  ActivityContext,
  ActivityDefinition,
  ActivityFunction,
  ActivityLimits,
  ActivityState,
  BreakerOptions,
  BrokerMessage,
  Engine,
  EngineEvents,
  EngineStats,
  HistoryEntry,
  Instance,
  InstancePage,
  ListenMap,
  ListenOptions,
  RateLimit,
  SendOptions,
  SendResult,
  StartOptions,
  TransitionEvent,
  WorkflowBroker,
} from './types.js'
export { validateMachines } from './validate.js'
