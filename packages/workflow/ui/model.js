// What the page knows: the route, the data last received, and what is derived from it.
import { api } from './dom.js'

/** Called when data arrives outside a navigation (a diagram): app.js sets it to its render. */
export const hooks = { changed: () => {} }

export const state = {
  route: { view: 'overview', query: new URLSearchParams() },
  overview: { machines: [], counts: [] },
  list: undefined,
  detail: undefined,
  diagram: undefined,
  diagramKey: '',
  cursors: [],
  problem: undefined,
  stream: undefined,
  openDetails: new Set(),
}

export function parseRoute() {
  const hash = location.hash.replace(/^#/, '') || '/'
  const match = /^\/instance\/([^?]*)$/.exec(hash)
  if (match) {
    try {
      return { view: 'instance', id: decodeURIComponent(match[1]) }
    } catch {
      return { view: 'overview', query: new URLSearchParams() }
    }
  }
  const q = hash.indexOf('?')
  return { view: 'overview', query: new URLSearchParams(q < 0 ? '' : hash.slice(q + 1)) }
}

export const instanceHref = (id) => `#/instance/${encodeURIComponent(id)}`
export function overviewHref(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const text = q.toString()
  return text ? `#/?${text}` : '#/'
}

/** Every machine version seen in the counts or given as a definition, with its totals. */
export function machineVersions() {
  const map = new Map()
  const entry = (id, version) => {
    const key = `${id}\u0000${version}`
    if (!map.has(key)) map.set(key, { id, version, registered: false, total: 0, byStatus: {}, byState: new Map() })
    return map.get(key)
  }
  for (const m of state.overview.machines) entry(m.id, m.version).registered = true
  for (const c of state.overview.counts) {
    const e = entry(c.machine, c.version)
    e.total += c.count
    e.byStatus[c.status] = (e.byStatus[c.status] ?? 0) + c.count
    const s = e.byState.get(c.state) ?? { total: 0 }
    s.total += c.count
    s[c.status] = (s[c.status] ?? 0) + c.count
    e.byState.set(c.state, s)
  }
  return [...map.values()].sort((a, b) => a.id.localeCompare(b.id) || a.version - b.version)
}

export function selected() {
  const q = state.route.query
  const all = machineVersions()
  const id = q.get('machine')
  const version = Number(q.get('version'))
  return all.find((m) => m.id === id && m.version === version) ?? (id ? undefined : all[0])
}

export async function loadDiagram(machine, version, instance) {
  const key = `${machine}\u0000${version}\u0000${instance ?? ''}`
  if (state.diagramKey === key) return
  state.diagramKey = key
  state.diagram = undefined
  const q = new URLSearchParams({ machine, version: String(version) })
  if (instance) q.set('instance', instance)
  try {
    const diagram = await api(`api/diagram?${q}`)
    if (state.diagramKey === key) state.diagram = diagram
  } catch (error) {
    if (state.diagramKey === key) state.diagram = { error: error.message }
  }
  hooks.changed()
}
