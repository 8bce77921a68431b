import { WorkflowError } from '../errors.js'
import {
  type Commit,
  type CommitResult,
  type CountFilter,
  type FailureRecord,
  type HistoryKind,
  type HistoryRecord,
  type InstanceRecord,
  type InstanceStatus,
  type ListFilter,
  nextDue,
  type OutboxRecord,
  type TaskRecord,
  type TimerRecord,
} from '../store.js'

/** A commit with every value serialized: serialization errors surface here, for this commit alone. */
export interface EncodedCommit {
  readonly row: {
    id: string
    machine: string
    version: number
    state: string
    status: string
    revision: number
    data: string
    owner: string | null
    next_due: number | null
    created_at: number
    updated_at: number
  }
  readonly setOwner: boolean
  readonly expectedRevision: number
  readonly eventId: string | undefined
  readonly history: readonly {
    instanceId: string
    seq: number
    at: number
    kind: string
    event: string
    from: string | null
    to: string
  }[]
  readonly outbox: readonly {
    id: string
    instanceId: string
    topic: string
    key: string | null
    headers: string | null
    data: string
    createdAt: number
  }[]
  readonly outboxHoldUntil: number
}

/** A commit waiting in a store's group-commit queue, and how to settle its promise. */
export interface PendingCommit {
  encoded: EncodedCommit
  resolve: (result: CommitResult) => void
  reject: (error: unknown) => void
}

function json(value: unknown, what: string, instanceId: string): string {
  try {
    const text = JSON.stringify(value === undefined ? null : value)
    if (text === undefined) throw new TypeError(`${typeof value} cannot be stored`)
    return text
  } catch (error) {
    throw new WorkflowError(
      'WORKFLOW_INVALID_CONTEXT',
      `${what} of ${instanceId} is not JSON-serializable: ${(error as Error).message}`,
      {
        cause: error,
        instanceId,
      },
    )
  }
}

export function encodeCommit(commit: Commit): EncodedCommit {
  const instance = commit.instance
  if (commit.expectedRevision !== 0 && instance.revision !== commit.expectedRevision + 1) {
    throw new WorkflowError(
      'WORKFLOW_CONFLICT',
      `commit of ${instance.id}: revision ${instance.revision} does not follow ${commit.expectedRevision}`,
      {
        instanceId: instance.id,
      },
    )
  }
  // The columns hold the rest; `data` keeps what has no column of its own.
  const data: Record<string, unknown> = { context: instance.context === undefined ? null : instance.context }
  if (instance.timers.length > 0) data.timers = instance.timers
  if (instance.tasks.length > 0) data.tasks = instance.tasks
  if (instance.failure) data.failure = instance.failure
  if (instance.parent) data.parent = instance.parent
  return {
    row: {
      id: instance.id,
      machine: instance.machine,
      version: instance.version,
      state: instance.state,
      status: instance.status,
      revision: instance.revision,
      data: json(data, 'the instance (context, task input)', instance.id),
      owner: commit.owner ?? null,
      next_due: nextDue(instance),
      created_at: instance.createdAt,
      updated_at: instance.updatedAt,
    },
    setOwner: commit.owner !== undefined,
    expectedRevision: commit.expectedRevision,
    eventId: commit.eventId,
    history: commit.history.map((h) => ({
      instanceId: h.instanceId,
      seq: h.seq,
      at: h.at,
      kind: h.kind,
      event: json(h.event, 'the event', instance.id),
      from: h.from,
      to: h.to,
    })),
    outbox: commit.outbox.map((o) => ({
      id: o.id,
      instanceId: o.instanceId,
      topic: o.topic,
      key: o.key ?? null,
      headers: o.headers ? json(o.headers, 'outbox headers', instance.id) : null,
      data: json(o.data, 'an outbox message', instance.id),
      createdAt: o.createdAt,
    })),
    outboxHoldUntil: commit.outboxHoldUntil ?? 0,
  }
}

const parse = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value)

/** The columns every store reads an instance from (`owner` included). */
/**
 * The WHERE clause (empty when nothing filters) and parameters of `list` for the SQL stores, the
 * row limit being the last parameter; `placeholder(n)` writes the n-th one (`?` or `$n`).
 */
export function listConditions(
  filter: ListFilter,
  placeholder: (n: number) => string,
  /** The id as the store orders it: paging must compare the way ORDER BY sorts (PostgreSQL: `id COLLATE "C"`). */
  orderedId = 'id',
): { where: string; params: unknown[] } {
  const where: string[] = []
  const params: unknown[] = []
  const add = (condition: (p: string) => string, value: unknown) => {
    params.push(value)
    where.push(condition(placeholder(params.length)))
  }
  for (const [column, value] of [
    ['machine', filter.machine],
    ['version', filter.version],
    ['state', filter.state],
    ['status', filter.status],
  ] as const) {
    if (value !== undefined) add((p) => `${column} = ${p}`, value)
  }
  if (filter.after !== undefined) add((p) => `${orderedId} > ${p}`, filter.after)
  params.push(filter.limit ?? 100)
  return { where: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', params }
}

/** `countInstances` for the SQL stores: one row per machine, version, state and status (the count a number in both). */
export function countQuery(
  table: string,
  filter: CountFilter,
  placeholder: (n: number) => string,
): { sql: string; params: unknown[] } {
  const { where, params } = listConditions({ ...filter, after: undefined }, placeholder)
  params.pop() // the limit, which a count has no use for
  return {
    sql: `SELECT machine, version, state, status, CAST(COUNT(*) AS INTEGER) AS count FROM ${table} ${where} GROUP BY machine, version, state, status`,
    params,
  }
}

export const INSTANCE_COLUMNS = 'id, machine, version, state, status, revision, data, owner, created_at, updated_at'

/** An instance row (`data` as JSON text or parsed) back to its record, with `owner` attached. */
export function rowToRecord(
  row: Record<string, unknown>,
  owner: string | null = (row.owner as string | null) ?? null,
): InstanceRecord {
  const data = parse(row.data) as {
    context: unknown
    timers?: TimerRecord[]
    tasks?: TaskRecord[]
    failure?: FailureRecord
    parent?: InstanceRecord['parent']
  }
  const record: InstanceRecord & { owner?: string | null } = {
    id: row.id as string,
    machine: row.machine as string,
    version: Number(row.version),
    state: row.state as string,
    status: row.status as InstanceStatus,
    context: data.context,
    revision: Number(row.revision),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    timers: data.timers ?? [],
    tasks: data.tasks ?? [],
  }
  if (data.failure) (record as { failure?: FailureRecord }).failure = data.failure
  if (data.parent) (record as { parent?: InstanceRecord['parent'] }).parent = data.parent
  record.owner = owner
  return record
}

export function rowToHistory(row: Record<string, unknown>): HistoryRecord {
  return {
    instanceId: row.instance_id as string,
    seq: Number(row.seq),
    at: Number(row.at),
    kind: row.kind as HistoryKind,
    event: parse(row.event),
    from: (row.from_state as string | null) ?? null,
    to: row.to_state as string,
  }
}

export function rowToOutbox(row: Record<string, unknown>): OutboxRecord {
  const headers =
    row.headers === null || row.headers === undefined ? undefined : (parse(row.headers) as Record<string, string>)
  return {
    id: row.id as string,
    instanceId: row.instance_id as string,
    topic: row.topic as string,
    data: parse(row.data),
    key: (row.key as string | null) ?? undefined,
    headers,
    createdAt: Number(row.created_at),
  }
}
