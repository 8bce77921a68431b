// The workflow inspector's page: ES modules, no build step. Routes (#/ and #/instance/<id>), the first
// load of each view through the JSON API, then live updates by Server-Sent Events.
import { api, el, left, put } from './dom.js'
import { hooks, parseRoute, selected, state } from './model.js'
import { renderInstance, renderOverview, renderSidebar } from './views.js'

const PAGE = 50

function render() {
  renderSidebar()
  const main = document.getElementById('main')
  main.replaceChildren()
  if (state.problem) put(main, el('div', { class: 'error-box', id: 'problem', text: state.problem }))
  if (state.route.view === 'instance') renderInstance(main)
  else renderOverview(main)
}

function streamQuery() {
  if (state.route.view === 'instance') return new URLSearchParams({ instance: state.route.id })
  const m = selected()
  const q = new URLSearchParams({ limit: String(PAGE) })
  if (m) {
    q.set('machine', m.id)
    q.set('version', String(m.version))
  }
  for (const key of ['status', 'state', 'after']) {
    const v = state.route.query.get(key)
    if (v) q.set(key, v)
  }
  return q
}

function connect() {
  const query = streamQuery().toString()
  if (state.stream?.query === query) return
  state.stream?.source.close()
  const source = new EventSource(`api/stream?${query}`)
  const live = document.getElementById('live')
  const show = (s, text) => {
    live.dataset.state = s
    live.textContent = text
  }
  source.onopen = () => show('live', 'live')
  source.onerror = () => show('down', 'reconnecting…')
  const on = (event, apply) =>
    source.addEventListener(event, (e) => {
      apply(JSON.parse(e.data))
      if (event !== 'problem') state.problem = undefined
      render()
      if (event === 'counts') connect()
    })
  on('counts', (data) => (state.overview = data))
  on('list', (data) => (state.list = data))
  on('instance', (data) => (state.detail = data))
  on('problem', (data) => (state.problem = `${data.error.code}: ${data.error.message}`))
  state.stream = { query, source }
}

async function navigate() {
  state.route = parseRoute()
  state.problem = undefined
  if (state.route.view === 'instance') {
    if (state.detail?.instance.id !== state.route.id) state.detail = undefined
    state.openDetails.clear()
  } else state.list = undefined
  render()
  try {
    if (state.route.view === 'instance') state.detail = await api(`api/instances/${encodeURIComponent(state.route.id)}`)
    else {
      state.overview = await api('api/counts')
      state.list = await api(`api/instances?${streamQuery()}`)
    }
  } catch (error) {
    state.problem = error.code ? `${error.code}: ${error.message}` : error.message
  }
  render()
  connect()
}

setInterval(() => {
  for (const cell of document.querySelectorAll('.left[data-at]')) cell.textContent = left(cell.dataset.at)
}, 1000)
hooks.changed = render
window.addEventListener('hashchange', navigate)
void navigate()
