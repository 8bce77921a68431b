import { WorkflowError } from '../errors.js'
import type {
  ClaimOptions,
  Commit,
  CommitResult,
  CountFilter,
  InstanceCount,
  InstanceRecord,
  InstanceStatus,
  ListFilter,
  OutboxClaimOptions,
  Store,
} from '../store.js'
import { encodeCommit, rowToHistory, rowToOutbox, rowToRecord } from './encode.js'
import { memoryFlow } from './flow-memory.js'
import { memorySchedules } from './schedules-memory.js'

interface Row {
  encoded: Record<string, unknown>
  revision: number
  machine: string
  version: number
  state: string
  status: string
  owner: string | null
  due: number | null
}

function withOwner(row: Row): InstanceRecord {
  return rowToRecord(row.encoded, row.owner)
}

/**
 * Everything in this process's memory: for tests and for processes whose instances may be lost
 * with them. Records are stored serialized, so what comes back is a copy, as from a database.
 * Closing keeps the data: open it again (or hand it to a new engine) to simulate a restart.
 */
export function memoryStore(): Store {
  const instances = new Map<string, Row>()
  const history = new Map<string, Record<string, unknown>[]>()
  const events = new Map<string, Set<string>>()
  const outbox = new Map<string, { row: Record<string, unknown>; availableAt: number; seq: number }>()
  const owners = new Map<string, number>()
  let outboxSeq = 0
  let open = false

  const check = () => {
    if (!open) throw new WorkflowError('WORKFLOW_STORE_UNAVAILABLE', 'the memory store is closed: open() it first')
  }

  const store: Store = {
    // Schedules (optional Store methods): kept like the rest, across close and open.
    ...memorySchedules(() => check()),
    // Flow control (optional Store methods): the same.
    ...memoryFlow(() => check()),
    kind: 'memory',
    shared: false,
    async open() {
      open = true
    },
    async close() {
      open = false
    },
    async commit(commit: Commit): Promise<CommitResult> {
      check()
      const encoded = encodeCommit(commit)
      const id = encoded.row.id
      const row = instances.get(id)
      if (commit.expectedRevision === 0) {
        if (row) return { status: 'exists' }
      } else if (!row || row.revision !== commit.expectedRevision) {
        const seen = events.get(id)
        if (row && commit.eventId !== undefined && seen?.has(commit.eventId)) return { status: 'duplicate' }
        return { status: 'conflict' }
      }
      const seen = events.get(id)
      if (commit.eventId !== undefined && seen?.has(commit.eventId)) return { status: 'duplicate' }
      instances.set(id, {
        encoded: { ...encoded.row },
        machine: encoded.row.machine,
        version: encoded.row.version,
        state: encoded.row.state,
        status: encoded.row.status,
        revision: encoded.row.revision,
        owner: encoded.setOwner ? encoded.row.owner : (row?.owner ?? null),
        due: encoded.row.next_due,
      })
      if (commit.eventId !== undefined) {
        if (seen) seen.add(commit.eventId)
        else events.set(id, new Set([commit.eventId]))
      }
      let rows = history.get(id)
      if (!rows) {
        rows = []
        history.set(id, rows)
      }
      for (const h of encoded.history)
        rows.push({
          instance_id: h.instanceId,
          seq: h.seq,
          at: h.at,
          kind: h.kind,
          event: h.event,
          from_state: h.from,
          to_state: h.to,
        })
      for (const o of encoded.outbox)
        outbox.set(o.id, {
          row: {
            id: o.id,
            instance_id: o.instanceId,
            topic: o.topic,
            key: o.key,
            headers: o.headers,
            data: o.data,
            created_at: o.createdAt,
          },
          availableAt: encoded.outboxHoldUntil,
          seq: outboxSeq++,
        })
      return { status: 'committed' }
    },
    async load(id) {
      check()
      const row = instances.get(id)
      return row ? withOwner(row) : undefined
    },
    async list(filter: ListFilter) {
      check()
      const limit = filter.limit ?? 100
      const ids = [...instances.keys()].filter((id) => filter.after === undefined || id > filter.after).sort()
      const out: InstanceRecord[] = []
      for (const id of ids) {
        const row = instances.get(id) as Row
        if (filter.machine !== undefined && row.machine !== filter.machine) continue
        if (filter.version !== undefined && row.version !== filter.version) continue
        if (filter.state !== undefined && row.state !== filter.state) continue
        if (filter.status !== undefined && row.status !== filter.status) continue
        out.push(withOwner(row))
        if (out.length >= limit) break
      }
      return out
    },
    async countInstances(filter: CountFilter) {
      check()
      const groups = new Map<string, InstanceCount>()
      for (const row of instances.values()) {
        if (filter.machine !== undefined && row.machine !== filter.machine) continue
        if (filter.version !== undefined && row.version !== filter.version) continue
        if (filter.state !== undefined && row.state !== filter.state) continue
        if (filter.status !== undefined && row.status !== filter.status) continue
        const key = JSON.stringify([row.machine, row.version, row.state, row.status])
        const group = groups.get(key)
        groups.set(key, {
          machine: row.machine,
          version: row.version,
          state: row.state,
          status: row.status as InstanceStatus,
          count: (group?.count ?? 0) + 1,
        })
      }
      return [...groups.values()]
    },
    async history(id) {
      check()
      return (history.get(id) ?? []).map(rowToHistory)
    },
    async hasEvent(instanceId, eventId) {
      check()
      return events.get(instanceId)?.has(eventId) ?? false
    },
    async claim(options: ClaimOptions) {
      check()
      const candidates: [string, Row][] = []
      for (const entry of instances) {
        const row = entry[1]
        if (row.status !== 'running' || row.due === null || row.due > options.dueBefore) continue
        if (options.afterId !== undefined && entry[0] <= options.afterId) continue
        const free =
          options.takeover ||
          row.owner === null ||
          (row.owner === options.owner ? options.includeOwn : (owners.get(row.owner) ?? 0) <= options.now)
        if (free) candidates.push(entry)
      }
      if (options.afterId !== undefined) candidates.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      else candidates.sort((a, b) => (a[1].due as number) - (b[1].due as number))
      return candidates.slice(0, options.limit).map(([, row]) => {
        row.owner = options.owner
        return withOwner(row)
      })
    },
    async heartbeat(owner, until) {
      check()
      if (until <= 0) {
        owners.delete(owner)
        for (const row of instances.values()) if (row.owner === owner) row.owner = null
      } else owners.set(owner, until)
    },
    async claimOutbox(options: OutboxClaimOptions) {
      check()
      const ready = [...outbox.entries()]
        .filter(([, row]) => row.availableAt <= options.now)
        .sort((a, b) => a[1].seq - b[1].seq)
        .slice(0, options.limit)
      return ready.map(([, row]) => {
        row.availableAt = options.holdUntil
        return rowToOutbox(row.row)
      })
    },
    async ackOutbox(ids) {
      check()
      for (const id of ids) outbox.delete(id)
    },
  }
  return store
}
