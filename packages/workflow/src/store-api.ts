/**
 * `@backplane/workflow/store`: what a store author needs. The Store interface and the records it
 * reads and writes, and the pure transition function that turns a record and an event into the
 * next record (to test a store with real steps, or to inspect instances offline).
 * Run the conformance suite from `@backplane/workflow/testing` against a new store.
 */

export {
  type ActivityControl,
  type AdmitOptions,
  type AdmitResult,
  applyControl,
  breakerState,
  type ControlChange,
  type ControlResult,
  type FlowLimits,
  type FlowRate,
  type FlowRequest,
  type FlowSlot,
  type FlowStart,
  type FlowStore,
  flowMethods,
  initialControl,
  planAdmission,
  rateWindow,
} from './flow-store.js'
export {
  type ScheduleClaimOptions,
  type ScheduleDefinition,
  type ScheduleRecord,
  type ScheduleStore,
  scheduleMethods,
} from './schedule-store.js'
export {
  type ClaimOptions,
  type Commit,
  type CommitResult,
  type CountFilter,
  type FailureRecord,
  type HistoryKind,
  type HistoryRecord,
  type InstanceCount,
  type InstanceRecord,
  type InstanceStatus,
  type ListFilter,
  nextDue,
  type OutboxClaimOptions,
  type OutboxRecord,
  type Store,
  type TaskRecord,
  type TimerRecord,
} from './store.js'
export { initialStep, type Step, type StepResult, type TransitionInput, transition } from './transition.js'
