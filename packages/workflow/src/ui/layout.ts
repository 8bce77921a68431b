/**
 * A simple layered layout of a state graph, top to bottom: layers by breadth-first distance from
 * the initial state, each layer ordered by where its predecessors sit (two barycentre sweeps).
 * Edges down the layers are straight curves; edges back up or within a layer loop round on the
 * right. The page draws the result as SVG; nothing here knows about HTML.
 */
import type { AnywhereEdge, Graph } from './graph.js'

export interface DiagramNode {
  readonly name: string
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
  readonly final: boolean
  readonly initial: boolean
  readonly invoke?: string | undefined
}

export interface DiagramEdge {
  readonly from: string
  readonly to: string
  readonly labels: readonly string[]
  /** SVG path data. */
  readonly path: string
  readonly labelX: number
  readonly labelY: number
}

export interface Diagram {
  readonly width: number
  readonly height: number
  readonly nodes: readonly DiagramNode[]
  readonly edges: readonly DiagramEdge[]
  /** Machine-level transitions, taken from every state that is not final (drawn as a note). */
  readonly anywhere: readonly AnywhereEdge[]
  /** The arrow from the start dot into the initial state. */
  readonly start?: { readonly cx: number; readonly cy: number; readonly path: string } | undefined
}

const CHAR = 7.2
const NODE_HEIGHT = 34
const INVOKE_HEIGHT = 50
const LAYER_GAP = 90
const NODE_GAP = 56
const MARGIN = 40
const LOOP = 46

const round = (n: number) => Math.round(n * 10) / 10

function layers(graph: Graph): string[][] {
  const names = graph.states.map((s) => s.name)
  const next = new Map<string, string[]>(names.map((n) => [n, []]))
  for (const e of graph.edges) if (e.from !== e.to) next.get(e.from)?.push(e.to)
  const depth = new Map<string, number>()
  const queue: string[] = []
  const seed = (name: string, d: number) => {
    if (depth.has(name)) return
    depth.set(name, d)
    queue.push(name)
  }
  if (graph.initial !== undefined && next.has(graph.initial)) seed(graph.initial, 0)
  // States the initial one does not reach (observed graphs, partial histories) start layers of their own.
  for (let i = 0; i <= names.length; i++) {
    while (queue.length > 0) {
      const name = queue.shift() as string
      for (const to of next.get(name) ?? []) seed(to, (depth.get(name) ?? 0) + 1)
    }
    const left = names.find((n) => !depth.has(n))
    if (left === undefined) break
    seed(left, 0)
  }
  const out: string[][] = []
  for (const name of names) {
    const d = depth.get(name) ?? 0
    while (out.length <= d) out.push([])
    out[d]?.push(name)
  }
  return out
}

function order(rows: string[][], graph: Graph): void {
  const prev = new Map<string, string[]>()
  const next = new Map<string, string[]>()
  for (const e of graph.edges) {
    if (e.from === e.to) continue
    prev.set(e.to, [...(prev.get(e.to) ?? []), e.from])
    next.set(e.from, [...(next.get(e.from) ?? []), e.to])
  }
  const sweep = (rowIndexes: number[], neighbours: Map<string, string[]>) => {
    for (const r of rowIndexes) {
      const position = new Map<string, number>()
      for (const row of rows) for (const [i, n] of row.entries()) position.set(n, i / Math.max(1, row.length - 1))
      const row = rows[r] as string[]
      const score = (n: string, i: number) => {
        const placed = (neighbours.get(n) ?? []).filter((m) => position.has(m) && !row.includes(m))
        if (placed.length === 0) return i / Math.max(1, row.length - 1)
        return placed.reduce((sum, m) => sum + (position.get(m) as number), 0) / placed.length
      }
      const scored = row.map((n, i) => ({ n, s: score(n, i), i }))
      scored.sort((a, b) => a.s - b.s || a.i - b.i)
      rows[r] = scored.map((x) => x.n)
    }
  }
  const down = rows.map((_, i) => i).slice(1)
  sweep(down, prev)
  sweep(down.reverse(), next)
}

/** Places the states of `graph` and routes its transitions. */
export function layoutGraph(graph: Graph): Diagram {
  const rows = layers(graph)
  order(rows, graph)
  const byName = new Map(graph.states.map((s) => [s.name, s]))
  const size = (name: string) => {
    const invoke = byName.get(name)?.invoke
    const text = Math.max(name.length, invoke ? invoke.length + 7 : 0)
    return { width: Math.max(96, Math.ceil(text * CHAR) + 32), height: invoke ? INVOKE_HEIGHT : NODE_HEIGHT }
  }
  const rowWidth = (row: string[]) => row.reduce((w, n) => w + size(n).width, 0) + NODE_GAP * (row.length - 1)
  const widest = Math.max(0, ...rows.map(rowWidth))
  const nodes = new Map<string, DiagramNode>()
  let y = MARGIN + 26
  for (const row of rows) {
    let x = MARGIN + (widest - rowWidth(row)) / 2
    const height = Math.max(...row.map((n) => size(n).height))
    for (const name of row) {
      const { width, height: h } = size(name)
      const state = byName.get(name)
      nodes.set(name, {
        name,
        x: round(x),
        y: round(y + (height - h) / 2),
        width,
        height: h,
        final: state?.final ?? false,
        initial: name === graph.initial,
        invoke: state?.invoke,
      })
      x += width + NODE_GAP
    }
    y += height + LAYER_GAP
  }
  const layerOf = new Map<string, number>()
  rows.forEach((row, i) => {
    for (const n of row) layerOf.set(n, i)
  })

  let loopRight = MARGIN + widest
  let loops = 0
  const edges: DiagramEdge[] = []
  for (const e of graph.edges) {
    const a = nodes.get(e.from)
    const b = nodes.get(e.to)
    if (!a || !b) continue
    const down = (layerOf.get(e.to) ?? 0) > (layerOf.get(e.from) ?? 0)
    const across = layerOf.get(e.to) === layerOf.get(e.from)
    if (e.from === e.to) {
      const x = a.x + a.width
      const cy = a.y + a.height / 2
      edges.push({
        ...e,
        path: `M${x},${cy - 8} C${x + 40},${cy - 30} ${x + 40},${cy + 30} ${x},${cy + 8}`,
        labelX: round(x + 34),
        labelY: round(cy),
      })
    } else if (down) {
      const x1 = a.x + a.width / 2
      const y1 = a.y + a.height
      const x2 = b.x + b.width / 2
      const y2 = b.y
      const bend = (y2 - y1) / 2
      edges.push({
        ...e,
        path: `M${round(x1)},${y1} C${round(x1)},${round(y1 + bend)} ${round(x2)},${round(y2 - bend)} ${round(x2)},${y2}`,
        // Past the middle, where edges leaving one state have drawn apart.
        labelX: round(0.216 * x1 + 0.784 * x2),
        labelY: round(0.342 * y1 + 0.658 * y2),
      })
    } else if (across) {
      // Within a layer: from the facing side, arched over the states in between.
      const right = b.x > a.x
      const x1 = right ? a.x + a.width : a.x
      const x2 = right ? b.x : b.x + b.width
      const y1 = a.y + a.height / 2
      const y2 = b.y + b.height / 2
      const lift = Math.min(60, Math.abs(x2 - x1) / 4)
      const top = Math.min(y1, y2) - lift
      edges.push({
        ...e,
        path: `M${round(x1)},${round(y1)} C${round(x1 + (right ? 20 : -20))},${round(top)} ${round(x2 + (right ? -20 : 20))},${round(top)} ${round(x2)},${round(y2)}`,
        labelX: round((x1 + x2) / 2),
        labelY: round((y1 + y2) / 8 + 0.75 * top),
      })
    } else {
      // Back up the layers: out of the right side, round the right, into the right side; each
      // such edge a little further out than the one before, so they do not run on top of each other.
      const x1 = a.x + a.width
      const y1 = a.y + a.height / 2
      const x2 = b.x + b.width
      const y2 = b.y + b.height / 2
      const out = Math.max(x1, x2) + LOOP + 28 * loops++
      loopRight = Math.max(loopRight, out + 20)
      edges.push({
        ...e,
        path: `M${round(x1)},${round(y1)} C${round(out)},${round(y1)} ${round(out)},${round(y2)} ${round(x2)},${round(y2)}`,
        labelX: round((x1 + x2) / 8 + 0.75 * out),
        labelY: round((y1 + y2) / 2),
      })
    }
  }
  const initial = graph.initial === undefined ? undefined : nodes.get(graph.initial)
  const start = initial && {
    cx: round(initial.x + initial.width / 2),
    cy: round(initial.y - 22),
    path: `M${round(initial.x + initial.width / 2)},${round(initial.y - 16)} L${round(initial.x + initial.width / 2)},${initial.y}`,
  }
  const labelWidth = Math.max(0, ...edges.flatMap((e) => e.labels.map((l) => l.length * CHAR)))
  return {
    width: Math.ceil(Math.max(MARGIN * 2 + widest, loopRight + labelWidth / 2 + MARGIN)),
    height: Math.ceil(y - LAYER_GAP + MARGIN),
    nodes: [...nodes.values()],
    edges,
    anywhere: graph.anywhere ?? [],
    start,
  }
}
