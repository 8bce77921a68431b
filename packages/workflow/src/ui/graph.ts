/**
 * The states and transitions the inspector draws: from a machine's definition (read back from
 * `toMermaid`, the one walk over a definition's transitions) or, without one, from the transitions
 * seen in instances' histories.
 */
import type { AnyMachine } from '../machine.js'
import { toMermaid } from '../mermaid.js'
import type { HistoryEntry } from '../types.js'

export interface GraphState {
  readonly name: string
  readonly final: boolean
  /** The activity the state invokes, when known. */
  readonly invoke?: string | undefined
}

export interface GraphEdge {
  readonly from: string
  readonly to: string
  /** One label per transition between these two states ("SUBMIT", "after 30m", "done charge"). */
  readonly labels: readonly string[]
}

/** A machine-level transition (`on` of the machine): taken from every state that is not final. */
export interface AnywhereEdge {
  readonly label: string
  /** null for an internal transition (the state is kept). */
  readonly to: string | null
}

export interface Graph {
  readonly initial: string | undefined
  readonly states: readonly GraphState[]
  readonly edges: readonly GraphEdge[]
  /** Drawn once as a note rather than as an arrow out of every state. */
  readonly anywhere?: readonly AnywhereEdge[] | undefined
}

const STATE_ALIAS = /^\s*state "(.*)" as (\S+)$/
const EDGE = /^\s*(\S+) --> (\S+)(?:: (.*))?$/
const NOTE = /^\s*(\S+): invoke (.*)$/

function addEdge(
  edges: Map<string, { from: string; to: string; labels: string[] }>,
  from: string,
  to: string,
  label: string,
) {
  const key = JSON.stringify([from, to])
  const edge = edges.get(key) ?? { from, to, labels: [] }
  if (!edge.labels.includes(label)) edge.labels.push(label)
  edges.set(key, edge)
}

/** The graph of a machine definition, read from its Mermaid diagram so there is one walk of transitions. */
export function definitionGraph(machine: AnyMachine): Graph {
  const names = Object.keys(machine.config.states)
  const lines = toMermaid(machine).split('\n')
  // toMermaid gives a state whose name is not a plain identifier an alias (and writes " as ').
  const aliasOf = new Map<string, string>()
  for (const line of lines) {
    const match = STATE_ALIAS.exec(line)
    if (match) aliasOf.set(match[1] as string, match[2] as string)
  }
  const nameOf = new Map(names.map((name) => [aliasOf.get(name.replace(/"/g, "'")) ?? name, name]))
  // toMermaid writes a machine-level `on` out of every state that does not define the event itself.
  const globalTypes = Object.keys(machine.config.on ?? {})
  const isAnywhere = (from: string, label: string) =>
    globalTypes.some(
      (type) =>
        (label === type || label.startsWith(`${type} [`) || label === `${type} (internal)`) &&
        !Object.hasOwn(machine.config.states[from]?.on ?? {}, type),
    )
  const anywhere = new Map<string, AnywhereEdge>()
  const finals = new Set<string>()
  const invokes = new Map<string, string>()
  const edges = new Map<string, { from: string; to: string; labels: string[] }>()
  let initial: string | undefined
  for (const line of lines) {
    const edge = EDGE.exec(line)
    if (edge) {
      const [, fromId, toId, label] = edge as unknown as [string, string, string, string | undefined]
      if (fromId === '[*]') initial = nameOf.get(toId)
      else if (toId === '[*]') finals.add(nameOf.get(fromId) ?? fromId)
      else {
        const from = nameOf.get(fromId)
        const to = nameOf.get(toId)
        if (from === undefined || to === undefined) continue
        if (isAnywhere(from, label ?? '')) {
          const target = label?.endsWith(' (internal)') ? null : to
          anywhere.set(JSON.stringify([label, target]), { label: label ?? '', to: target })
        } else addEdge(edges, from, to, label ?? '')
      }
      continue
    }
    const note = NOTE.exec(line)
    if (note) invokes.set(nameOf.get(note[1] as string) ?? '', note[2] as string)
  }
  return {
    initial,
    states: names.map((name) => ({ name, final: finals.has(name), invoke: invokes.get(name) })),
    edges: [...edges.values()],
    anywhere: [...anywhere.values()],
  }
}

function observedLabel(entry: HistoryEntry): string | undefined {
  const event = (typeof entry.event === 'object' && entry.event !== null ? entry.event : {}) as Record<string, unknown>
  switch (entry.kind) {
    case 'event':
      return String(event.type ?? 'event')
    case 'timer':
      return `after ${String(event.delay ?? '')}`
    case 'activity.done':
      return `done ${String(event.activity ?? '')}`
    case 'activity.error':
      return `error ${String(event.activity ?? '')}`
    case 'migrate':
      return 'migrate'
    default:
      // start, ignored, failed, retry: no transition between states.
      return undefined
  }
}

/**
 * The graph seen in histories (no definition at hand): every state entered, every transition
 * taken. `finals` are states where instances ended `done`; `extra` are states known from counts.
 */
export function observedGraph(
  histories: readonly (readonly HistoryEntry[])[],
  finals: ReadonlySet<string>,
  extra: readonly string[] = [],
): Graph {
  const names = new Set<string>()
  const edges = new Map<string, { from: string; to: string; labels: string[] }>()
  const initials = new Map<string, number>()
  for (const history of histories) {
    for (const entry of history) {
      names.add(entry.to)
      if (entry.kind === 'start') initials.set(entry.to, (initials.get(entry.to) ?? 0) + 1)
      const label = observedLabel(entry)
      if (label === undefined || entry.from === null) continue
      names.add(entry.from)
      addEdge(edges, entry.from, entry.to, label)
    }
  }
  for (const name of extra) names.add(name)
  const initial = [...initials].sort((a, b) => b[1] - a[1])[0]?.[0]
  return {
    initial,
    states: [...names].map((name) => ({ name, final: finals.has(name) })),
    edges: [...edges.values()],
  }
}
