/**
 * What the `backplane.workflow.instances` gauge reads: the running and failed instances of every
 * open engine's store, counted by the store (`countInstances`) when the SDK collects. Store-wide
 * figures, so they agree whatever store (or how many engine processes) is behind them.
 */
import type { Attributes, ObservableResult } from '@opentelemetry/api'
import type { InstanceStatus, Store } from '../store.js'

/**
 * The statuses counted: the live ones, which are bounded by the work in flight and counted through
 * the stores' (machine, status) index. `done` and `cancelled` grow without end (counting them scans
 * the whole table, 100–150 ms of blocked event loop per 200,000 rows on SQLite): their rate is the
 * transitions counter's `workflow.status`.
 */
export const COUNTED_STATUSES = ['running', 'failed'] as const satisfies readonly InstanceStatus[]

/** One open engine: its store and the machines it knows (the counts are asked per machine, for the index). */
export interface CountSource {
  readonly store: Store
  readonly machines: readonly string[]
  /** Told when the store cannot count: the gauge keeps its last values meanwhile. */
  readonly onError: (error: unknown) => void
}

const sources = new Set<CountSource>()
/** Every series reported so far: one that no longer has instances is reported as 0, not left at its last value. */
const seen = new Map<string, Attributes>()
let inFlight = false

/** Counts this engine's store in the gauge until the returned function is called (close). */
export function addCountSource(source: CountSource): () => void {
  sources.add(source)
  return () => {
    sources.delete(source)
    if (sources.size === 0) seen.clear()
  }
}

/** The gauge's callback. Never throws; a collection that finds the last one still counting reports nothing. */
export async function observeInstanceCounts(result: ObservableResult): Promise<void> {
  if (inFlight || sources.size === 0) return
  inFlight = true
  try {
    const counts = await countAll()
    if (!counts) return
    for (const [key, attributes] of seen) if (!counts.has(key)) result.observe(0, attributes)
    for (const [key, { attributes, value }] of counts) {
      seen.set(key, attributes)
      result.observe(value, attributes)
    }
  } finally {
    inFlight = false
  }
}

/** Sums over versions and over stores; engines sharing one store count it once. Undefined when a store failed. */
async function countAll(): Promise<Map<string, { attributes: Attributes; value: number }> | undefined> {
  const byStore = new Map<Store, { machines: Set<string>; onError: CountSource['onError'] }>()
  for (const source of sources) {
    const entry = byStore.get(source.store) ?? { machines: new Set<string>(), onError: source.onError }
    for (const machine of source.machines) entry.machines.add(machine)
    byStore.set(source.store, entry)
  }
  const counts = new Map<string, { attributes: Attributes; value: number }>()
  for (const [store, { machines, onError }] of byStore) {
    // Optional in the Store contract: a store without it has no gauge (paging through `list` is not bounded).
    if (!store.countInstances) continue
    try {
      for (const machine of machines) {
        for (const status of COUNTED_STATUSES) {
          for (const row of await store.countInstances({ machine, status })) {
            const key = `${row.machine}\u0000${row.state}\u0000${row.status}`
            const count = Number(row.count)
            const entry = counts.get(key)
            if (entry) entry.value += count
            else
              counts.set(key, {
                attributes: {
                  'workflow.machine': row.machine,
                  'workflow.state': row.state,
                  'workflow.status': row.status,
                },
                value: count,
              })
          }
        }
      }
    } catch (error) {
      onError(error)
      return undefined
    }
  }
  return counts
}
