export { ActivityTimeoutError, NonRetryableError } from './activity-errors.js'
export { type Clock, type ManualClock, manualClock, systemClock } from './clock.js'
export type { Duration } from './duration.js'
export {
  type ActivityContext,
  type ActivityDefinition,
  type ActivityFunction,
  type BrokerMessage,
  createEngine,
  type Engine,
  type EngineEvents,
  type EngineStats,
  type HistoryEntry,
  type Instance,
  type ListenMap,
  type ListenOptions,
  type SendOptions,
  type SendResult,
  type StartOptions,
  type TransitionEvent,
  type WorkflowBroker,
} from './engine.js'
export { WorkflowError, type WorkflowErrorCode } from './errors.js'
export {
  type Actions,
  type ActivityErrorInfo,
  type AfterEvent,
  type AnyMachine,
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
  type StateConfig,
  type Transition,
  type TransitionConfig,
  type WorkflowEvent,
} from './machine.js'
export { toMermaid } from './mermaid.js'
export type { EngineOptions, LoggerLike } from './options.js'
export type {
  ClaimOptions,
  Commit,
  CommitResult,
  FailureRecord,
  HistoryKind,
  HistoryRecord,
  InstanceRecord,
  InstanceStatus,
  ListFilter,
  OutboxClaimOptions,
  OutboxRecord,
  Store,
  TaskRecord,
  TimerRecord,
} from './store.js'
export { memoryStore } from './stores/memory.js'
export { initialStep, type Step, type StepResult, type TransitionInput, transition } from './transition.js'
export { validateMachines } from './validate.js'
