/**
 * A read-only handle on a store: instances, their history and counts, without an engine. It takes
 * no lease, arms no timer, runs no activity and commits nothing, so it can sit beside the engine
 * process that drives the store (the CLI's `ui`, the inspector, an ops script).
 */
import { parseWith } from '@backplane/internal'
import { z } from 'zod'
import {
  checkId,
  countFilterSchema,
  createReadApi,
  invalidFilter as invalid,
  listPage,
  storeRead,
} from './engine/reads.js'
import { WorkflowError } from './errors.js'
import { type AnyMachine, isMachine } from './machine.js'
import type { CountFilter, InstanceCount, ListFilter, Store } from './store.js'
import type { HistoryEntry, Instance, InstancePage } from './types.js'

export interface ReaderOptions {
  /** The store to read. The reader opens it (on first use, or `open()`) and `close()` closes it: give it a handle of its own. */
  store: Store
  /** The machine definitions, when you have them: `machine(id, version)` finds them (the inspector draws them). */
  machines?: readonly AnyMachine[] | undefined
}

export interface Reader {
  /** Opens the store (idempotent; every other method opens it on first use). */
  open(): Promise<void>
  /** Closes the store; later calls fail with WORKFLOW_CLOSED. */
  close(): Promise<void>
  /** Instances ordered by id, `limit` (1 to 1000, default 100) at a time; pass `next` as `after` for the next page. */
  list<C = unknown>(filter?: ListFilter): Promise<InstancePage<C>>
  /** WORKFLOW_UNKNOWN_INSTANCE when there is no such instance. */
  get<C = unknown>(instanceId: string): Promise<Instance<C>>
  history(instanceId: string): Promise<HistoryEntry[]>
  /**
   * Instances per machine, version, state and status (groups with none are left out). One query on
   * a store with `countInstances` (memory, PostgreSQL); others are paged through with `list`.
   */
  counts(filter?: CountFilter): Promise<InstanceCount[]>
  /** The definition of a machine version, when it was given. */
  machine(id: string, version: number): AnyMachine | undefined
  readonly machines: readonly AnyMachine[]
}

const COUNT_PAGE = 1000

const hasReadMethods = (value: unknown): value is Store =>
  typeof value === 'object' &&
  value !== null &&
  ['open', 'close', 'load', 'list', 'history'].every(
    (method) => typeof (value as Record<string, unknown>)[method] === 'function',
  )

const optionsSchema = z.strictObject({
  store: z.custom<Store>(hasReadMethods, {
    message: 'expected a store (open, close, load, list, history): sqliteStore(path), postgresStore(url), …',
  }),
  machines: z
    .array(z.custom<AnyMachine>(isMachine, { message: 'expected a machine from defineMachine(...)' }))
    .default([]),
})

/** A read-only handle on `store`: list, get, history and counts, with no engine. */
export function createReader(options: ReaderOptions): Reader {
  const { store, machines } = parseWith(optionsSchema, options, invalid, 'createReader')
  const reads = createReadApi(store)
  let opening: Promise<void> | undefined
  let closed = false

  const ready = async (what: string) => {
    if (closed) throw new WorkflowError('WORKFLOW_CLOSED', `reader.${what}: the reader is closed`)
    opening ??= storeRead(store, 'open', () => store.open()).catch((error: unknown) => {
      opening = undefined
      throw error
    })
    await opening
  }

  const countByPaging = async (filter: CountFilter): Promise<InstanceCount[]> => {
    const groups = new Map<string, InstanceCount>()
    let after: string | undefined
    for (;;) {
      const page = await storeRead(store, 'list', () => store.list({ ...filter, limit: COUNT_PAGE, after }))
      for (const r of page) {
        const key = JSON.stringify([r.machine, r.version, r.state, r.status])
        const count = (groups.get(key)?.count ?? 0) + 1
        groups.set(key, { machine: r.machine, version: r.version, state: r.state, status: r.status, count })
      }
      if (page.length < COUNT_PAGE) return [...groups.values()]
      after = page[page.length - 1]?.id
    }
  }

  return {
    machines,
    open: () => ready('open'),
    async close() {
      if (closed) return
      closed = true
      const wasOpen = opening !== undefined
      opening = undefined
      if (wasOpen) await storeRead(store, 'close', () => store.close())
    },
    async list<C>(filter: ListFilter = {}): Promise<InstancePage<C>> {
      return listPage<C>(store, filter, 'reader.list', () => ready('list'))
    },
    async get<C>(instanceId: string) {
      checkId(instanceId, 'reader.get')
      await ready('get')
      return reads.get<C>(instanceId)
    },
    async history(instanceId) {
      checkId(instanceId, 'reader.history')
      await ready('history')
      return reads.history(instanceId)
    },
    async counts(filter = {}) {
      const parsed = parseWith(countFilterSchema, filter, invalid, 'reader.counts')
      await ready('counts')
      const count = store.countInstances?.bind(store)
      if (count) return storeRead(store, 'countInstances', () => count(parsed))
      return countByPaging(parsed)
    },
    machine: (id, version) => machines.find((m) => m.id === id && m.version === version),
  }
}
