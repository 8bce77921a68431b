/** What the inspector's API answers and its live stream pushes, computed from a reader. */

import type { Reader } from '../reader.js'
import type { InstanceCount } from '../store.js'
import type { HistoryEntry, Instance } from '../types.js'
import { definitionGraph, observedGraph } from './graph.js'
import { type Diagram, layoutGraph } from './layout.js'
import type { Query } from './query.js'

/** How many instances' histories an observed diagram is drawn from. */
const OBSERVED_SAMPLE = 50

export interface Overview {
  /** Machine versions whose definitions the inspector was given. */
  readonly machines: readonly { readonly id: string; readonly version: number }[]
  readonly counts: readonly InstanceCount[]
}

export type InstanceSummary = Omit<Instance, 'context'>

export interface ListView {
  readonly instances: readonly InstanceSummary[]
  readonly next: string | null
}

export interface DiagramView extends Diagram {
  readonly machine: string
  readonly version: number
  /** `definition`: drawn from the machine given; `history`: from transitions seen in instances' histories. */
  readonly source: 'definition' | 'history'
  /** How many instances' histories an observed diagram was drawn from. */
  readonly observed?: number | undefined
}

export async function overview(reader: Reader, query: Query = {}): Promise<Overview> {
  const counts = await reader.counts({
    machine: query.machine,
    version: query.version,
    state: query.state,
    status: query.status,
  })
  const sorted = [...counts].sort(
    (a, b) =>
      a.machine.localeCompare(b.machine) ||
      a.version - b.version ||
      a.state.localeCompare(b.state) ||
      a.status.localeCompare(b.status),
  )
  return { machines: reader.machines.map((m) => ({ id: m.id, version: m.version })), counts: sorted }
}

const summary = ({ context: _context, ...rest }: Instance): InstanceSummary => rest

export async function listView(reader: Reader, query: Query): Promise<ListView> {
  const page = await reader.list({
    machine: query.machine,
    version: query.version,
    state: query.state,
    status: query.status,
    limit: query.limit ?? 50,
    after: query.after,
  })
  return { instances: page.instances.map(summary), next: page.next }
}

export async function instanceView(
  reader: Reader,
  id: string,
): Promise<{ instance: Instance; history: HistoryEntry[] }> {
  const instance = await reader.get(id)
  return { instance, history: await reader.history(id) }
}

export async function diagramView(
  reader: Reader,
  machine: string,
  version: number,
  instance?: string | undefined,
): Promise<DiagramView> {
  const definition = reader.machine(machine, version)
  if (definition) return { machine, version, source: 'definition', ...layoutGraph(definitionGraph(definition)) }
  const [page, counts] = await Promise.all([
    reader.list({ machine, version, limit: OBSERVED_SAMPLE }),
    reader.counts({ machine, version }),
  ])
  const ids = page.instances.map((i) => i.id)
  if (instance !== undefined && !ids.includes(instance)) ids.push(instance)
  const histories = await Promise.all(ids.map((id) => reader.history(id).catch(() => [])))
  const finals = new Set(counts.filter((c) => c.status === 'done').map((c) => c.state))
  const graph = observedGraph(
    histories,
    finals,
    counts.map((c) => c.state),
  )
  return { machine, version, source: 'history', observed: histories.length, ...layoutGraph(graph) }
}
