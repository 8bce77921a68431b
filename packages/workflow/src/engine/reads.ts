/**
 * The read API (`get`, `list`, `history`): straight from the store, never from the cache, so it sees
 * what other processes committed; and the helpers the write API shares with it.
 */
import { parseWith } from '@backplane/internal'
import { z } from 'zod'
import { storeUnavailable, WorkflowError } from '../errors.js'
import { INSTANCE_STATUSES, type InstanceRecord, type ListFilter, type Store } from '../store.js'
import type { Engine, Instance, InstancePage } from '../types.js'

export function publicInstance<C>(record: InstanceRecord): Instance<C> {
  return {
    id: record.id,
    machine: record.machine,
    version: record.version,
    state: record.state,
    status: record.status,
    context: record.context as C,
    revision: record.revision,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
    timers: record.timers.map((timer) => ({ delay: timer.delay, deadline: new Date(timer.deadline) })),
    tasks: record.tasks.map((task) => ({
      activity: task.activity,
      idempotencyKey: task.key,
      attempt: task.attempt,
      runAt: new Date(task.runAt),
      lastError: task.lastError,
    })),
    failure: record.failure ? { ...record.failure, at: new Date(record.failure.at) } : undefined,
  }
}

export const unknownInstance = (id: string) =>
  new WorkflowError('WORKFLOW_UNKNOWN_INSTANCE', `no workflow instance with id ${JSON.stringify(id)}`, {
    instanceId: id,
  })

export const checkId = (id: unknown, what: string): string => {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200)
    throw new WorkflowError(
      'WORKFLOW_INVALID_OPTIONS',
      `${what}: expected an instance id (a non-empty string of at most 200 characters), got ${JSON.stringify(id)}`,
    )
  return id
}

/** Runs a store read, turning its failure into WORKFLOW_STORE_UNAVAILABLE. */
export const storeRead = async <T>(store: Store, what: string, fn: () => Promise<T>): Promise<T> => {
  try {
    return await fn()
  } catch (error) {
    throw storeUnavailable(store.kind, what, error)
  }
}

const name = z.string().min(1).max(200)
/** What `count` narrows by; `list` adds paging. */
export const countFilterSchema = z.strictObject({
  machine: name.optional(),
  version: z.number().int().positive().optional(),
  state: name.optional(),
  status: z.enum(INSTANCE_STATUSES).optional(),
})
export const listFilterSchema = countFilterSchema.extend({
  limit: z.number().int().min(1).max(100_000).default(100),
  after: z.string().max(200).optional(),
})

export const invalidFilter = (message: string, details: string[]) =>
  new WorkflowError('WORKFLOW_INVALID_OPTIONS', message, { details })

/**
 * One page of instances in id order; `next` is the `after` of the next page, null on the last.
 * `ready` runs once the filter is valid (the reader opens its store then: bad input opens nothing).
 */
export async function listPage<C>(
  store: Store,
  filter: ListFilter | undefined,
  what: string,
  ready?: () => Promise<void>,
): Promise<InstancePage<C>> {
  const { limit, ...rest } = parseWith(listFilterSchema, filter ?? {}, invalidFilter, what)
  await ready?.()
  // One more than asked tells whether there is a next page without an empty last one.
  const records = await storeRead(store, 'list', () => store.list({ ...rest, limit: limit + 1 }))
  const page = records.slice(0, limit)
  return {
    instances: page.map((record) => publicInstance<C>(record)),
    next: records.length > limit ? (page.at(-1)?.id ?? null) : null,
  }
}

export type ReadApi = Pick<Engine, 'get' | 'list' | 'history'>

export function createReadApi(store: Store): ReadApi {
  return {
    async get(instanceId) {
      checkId(instanceId, 'get')
      const record = await storeRead(store, 'load', () => store.load(instanceId))
      if (!record) throw unknownInstance(instanceId)
      return publicInstance(record)
    },

    list: (filter) => listPage(store, filter, 'list'),

    async history(instanceId) {
      checkId(instanceId, 'history')
      const rows = await storeRead(store, 'history', () => store.history(instanceId))
      if (rows.length === 0 && !(await storeRead(store, 'load', () => store.load(instanceId))))
        throw unknownInstance(instanceId)
      return rows.map((row) => ({
        seq: row.seq,
        at: new Date(row.at),
        kind: row.kind,
        event: row.event,
        from: row.from,
        to: row.to,
      }))
    },
  }
}
