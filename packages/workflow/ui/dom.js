// DOM and formatting helpers of the inspector's page. Every value from the store goes on the page as
// text (textContent, SVG text nodes), never as markup: instance data is user input.
const SVG = 'http://www.w3.org/2000/svg'
export const STATUSES = ['running', 'done', 'failed', 'cancelled']

/** An element: attrs (class, text, href, title, data-*, on*: listeners), then children. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'text') node.textContent = String(value)
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, String(value))
  }
  return put(node, children)
}

/** Appends children (nested lists flattened; null, undefined and false skipped; the rest as text). */
export function put(node, ...children) {
  for (const child of children.flat(Number.POSITIVE_INFINITY)) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return node
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null) continue
    if (key === 'text') node.textContent = String(value)
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    else node.setAttribute(key, String(value))
  }
  for (const child of children.flat(Number.POSITIVE_INFINITY)) if (child) node.append(child)
  return node
}

const pad = (n, w = 2) => String(n).padStart(w, '0')
export function time(iso) {
  if (!iso) return '–'
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}
export function left(iso) {
  const ms = new Date(iso).getTime() - Date.now()
  if (ms <= 0) return 'due'
  const s = Math.floor(ms / 1000)
  const parts = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor(s / 3600) % 24, 'h'],
    [Math.floor(s / 60) % 60, 'm'],
    [s % 60, 's'],
  ].filter(([n], i, all) => n > 0 || all.slice(0, i).some(([m]) => m > 0) || i === 3)
  return `in ${parts
    .slice(0, 3)
    .map(([n, u]) => `${n}${u}`)
    .join(' ')}`
}
export const json = (value) => JSON.stringify(value, null, 2) ?? 'undefined'

export async function api(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw Object.assign(new Error(body?.error?.message ?? `HTTP ${res.status}`), { code: body?.error?.code })
  return body
}
