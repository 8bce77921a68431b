import { type ManualClock, manualClock } from '../clock.js'
import { createEngine } from '../engine.js'
import type { EngineOptions } from '../options.js'
import type { Store } from '../store.js'
import { memoryStore } from '../stores/memory.js'
import type { Engine, WorkflowBroker } from '../types.js'
import { type RecordingBroker, recordingBroker } from './recording-broker.js'

export interface TestEngineOptions<B extends WorkflowBroker = RecordingBroker>
  extends Omit<EngineOptions, 'clock' | 'store' | 'broker'> {
  /** Default: a new `memoryStore()`. Any store works; the clock drives timers, retries and polling over it. */
  readonly store?: Store | undefined
  /** Default: a `recordingBroker()`, which keeps what the engine publishes (`broker.published`). */
  readonly broker?: B | undefined
  /** Where the clock starts (ms since the epoch or a Date). Default: 2030-01-01T00:00:00Z. */
  readonly now?: number | Date | undefined
}

export interface TestEngine<B extends WorkflowBroker = RecordingBroker> {
  readonly engine: Engine
  /** The broker given, or the recording broker: `broker.published`, `broker.deliver(topic, data)`. */
  readonly broker: B
  /** Time moves only on `await clock.advance('30m')`: due timers and retries fire in order. */
  readonly clock: ManualClock
  readonly store: Store
  /** Closes the engine (the store with it). Activities still running get 50 ms unless `closeTimeout` says otherwise. */
  close(): Promise<void>
}

/**
 * An engine on a simulated clock, for tests: a 30-minute timeout is one `await clock.advance('30m')`,
 * which runs in milliseconds, offline, with nothing to download or start.
 */
export async function testEngine<B extends WorkflowBroker = RecordingBroker>(
  options: TestEngineOptions<B>,
): Promise<TestEngine<B>> {
  const { store = memoryStore(), broker = recordingBroker() as WorkflowBroker as B, now, ...rest } = options
  const clock = manualClock(now instanceof Date ? now.getTime() : now)
  // A test's activity may never settle (a gateway that never answers): close without waiting for it.
  const engine = await createEngine({ closeTimeout: 50, ...rest, store, broker, clock })
  return { engine, clock, store, broker, close: () => engine.close() }
}
