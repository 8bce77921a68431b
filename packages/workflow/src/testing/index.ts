/**
 * `@backplane/workflow/testing`: an engine on a simulated clock (`testEngine`), and the store
 * conformance suite, for vitest. Every store (memory,
 * SQLite, PostgreSQL, and yours) runs the same tests through its own hooks:
 *
 *   storeConformance('redis', { create: () => redisStore(url), cleanup: dropKeys })
 *
 * called at the top level of a vitest test file.
 */
import { afterAll, afterEach } from 'vitest'
import type { Store } from '../store.js'
import type { Engine } from '../types.js'
import { engineChildrenTests } from './engine-children.js'
import { engineFlowTests } from './engine-flow.js'
import { engineOverStoreTests } from './engine-over-store.js'
import { engineScheduleTests } from './engine-schedules.js'
import { flowContractTests } from './flow-contract.js'
import { scheduleContractTests } from './schedule-contract.js'
import { storeContractTests } from './store-contract.js'
import type { StoreSuiteHooks, Suite } from './suite.js'

export { type PublishedMessage, type RecordingBroker, recordingBroker } from './recording-broker.js'
export type { StoreSuiteHooks } from './suite.js'
export { type TestEngine, type TestEngineOptions, testEngine } from './test-engine.js'

/**
 * Registers the conformance suite of a store: the Store contract called directly, then an engine
 * driven over the store with a manual clock. `name` prefixes the describe blocks.
 */
export function storeConformance(name: string, hooks: StoreSuiteHooks): void {
  const reopen = hooks.reopen ?? ((store: Store) => store)
  const open: Store[] = []
  const engines: Engine[] = []

  const fresh = async (): Promise<Store> => {
    const store = await hooks.create()
    await store.open()
    open.push(store)
    return store
  }

  afterEach(async () => {
    for (const engine of engines.splice(0)) await engine.close().catch(() => undefined)
    for (const store of open.splice(0)) await store.close().catch(() => undefined)
  })
  afterAll(async () => {
    await hooks.cleanup?.()
  })

  const suite: Suite = { hooks, reopen, fresh, open, engines }
  storeContractTests(name, suite)
  engineOverStoreTests(name, suite)
  scheduleContractTests(name, suite)
  engineScheduleTests(name, suite)
  flowContractTests(name, suite)
  engineFlowTests(name, suite)
  engineChildrenTests(name, suite)
}
