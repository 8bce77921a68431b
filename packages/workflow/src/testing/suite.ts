/** What the parts of the store conformance suite share: the store author's hooks and the records they commit. */

import type { Commit, InstanceRecord, Store } from '../store.js'
import type { Engine } from '../types.js'

export interface StoreSuiteHooks {
  /** A new, empty store, not opened. */
  create(): Store | Promise<Store>
  /** Another handle on the same data (a restarted process would open this). Default: the same object. */
  reopen?(store: Store): Store | Promise<Store>
  /** Called once after the suite (drop schemas, remove files). */
  cleanup?(): Promise<void>
}

/** The hooks, and the stores and engines a test opened (closed after each test). */
export interface Suite {
  readonly hooks: StoreSuiteHooks
  /** `hooks.reopen`, or the same store. */
  reopen(store: Store): Store | Promise<Store>
  /** A new store, opened. */
  fresh(): Promise<Store>
  readonly open: Store[]
  readonly engines: Engine[]
}

export const T0 = Date.UTC(2030, 0, 1)

export function record(id: string, revision: number, patch: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    machine: 'm',
    version: 1,
    state: 'a',
    status: 'running',
    context: { n: revision },
    revision,
    createdAt: T0,
    updatedAt: T0 + revision,
    timers: [],
    tasks: [],
    ...patch,
  }
}

export function commitOf(instance: InstanceRecord, expectedRevision: number, patch: Partial<Commit> = {}): Commit {
  return {
    instance,
    expectedRevision,
    history: [
      {
        instanceId: instance.id,
        seq: instance.revision,
        at: instance.updatedAt,
        kind: expectedRevision === 0 ? 'start' : 'event',
        event: { type: 'E', n: instance.revision },
        from: expectedRevision === 0 ? null : 'a',
        to: instance.state,
      },
    ],
    outbox: [],
    ...patch,
  }
}

export const strip = (r: InstanceRecord | undefined) => {
  if (!r) return r
  const { owner: _owner, ...rest } = r as InstanceRecord & { owner?: unknown }
  return rest
}
