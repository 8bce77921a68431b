// The two views (the machines' instances, one instance) and the sidebar, built from the model.
import { drawDiagram } from './diagram.js'
import { el, json, left, put, STATUSES, time } from './dom.js'
import { instanceHref, loadDiagram, machineVersions, overviewHref, selected, state } from './model.js'

function diagramPanel(options) {
  const d = state.diagram
  if (!d) return el('div', { class: 'panel empty', text: 'drawing the diagram…' })
  if (d.error) return el('div', { class: 'panel error-box', text: `diagram: ${d.error}` })
  return el(
    'div',
    { class: 'panel', id: 'diagram' },
    drawDiagram(d, options),
    d.anywhere.length > 0
      ? el(
          'p',
          { class: 'note', id: 'anywhere' },
          'In every state that is not final: ',
          d.anywhere.map((a) => `${a.label} → ${a.to ?? '(stays)'}`).join(' · '),
        )
      : null,
    d.source === 'history'
      ? el('p', {
          class: 'note',
          id: 'diagram-source',
          text: `No definition of ${d.machine} v${d.version} was given to the inspector: this diagram shows the transitions seen in the history of ${d.observed} instance${d.observed === 1 ? '' : 's'}, not every transition the machine has.`,
        })
      : el('p', { class: 'note', text: 'Numbers: instances in each state now.' }),
  )
}

export function renderSidebar() {
  const nav = document.getElementById('machines')
  const current = state.route.view === 'overview' ? selected() : undefined
  const detail = state.detail?.instance
  nav.replaceChildren()
  put(
    nav,
    el('h2', { text: 'Machines' }),
    ...machineVersions().map((m) =>
      el(
        'a',
        {
          class: `machine${(current && current.id === m.id && current.version === m.version) || (detail && detail.machine === m.id && detail.version === m.version) ? ' active' : ''}`,
          href: overviewHref({ machine: m.id, version: m.version }),
          'data-machine': `${m.id} v${m.version}`,
        },
        el('span', { class: 'total', text: m.total }),
        el('span', { class: 'name', text: `${m.id} v${m.version}` }),
        el(
          'span',
          { class: 'statuses' },
          STATUSES.filter((s) => m.byStatus[s]).map((s) =>
            el('span', { class: `s-${s}`, text: `${m.byStatus[s]} ${s}` }),
          ),
        ),
        m.registered ? null : el('div', { class: 'unregistered', text: 'no definition given' }),
      ),
    ),
    machineVersions().length === 0 ? el('p', { class: 'empty', text: 'No instances yet.' }) : null,
  )
}

export function renderOverview(main) {
  const m = selected()
  if (!m) {
    put(
      main,
      el('h1', { text: 'No instances' }),
      el('p', { class: 'empty', text: 'The store holds no instance of this machine yet.' }),
    )
    return
  }
  void loadDiagram(m.id, m.version)
  const q = state.route.query
  const status = q.get('status') ?? ''
  const stateName = q.get('state') ?? ''
  const link = (patch) => overviewHref({ machine: m.id, version: m.version, status, state: stateName, ...patch })
  const stateNames = [...new Set([...(state.diagram?.nodes ?? []).map((n) => n.name), ...m.byState.keys()])]
  put(
    main,
    el('h1', {}, `${m.id} v${m.version}`, el('span', { class: 'note', id: 'total', text: `${m.total} instances` })),
    diagramPanel({
      byState: m.byState,
      onPick: (name) => (location.hash = link({ state: name === stateName ? '' : name, after: '' })),
    }),
    el(
      'div',
      { class: 'chips' },
      el(
        'a',
        { class: `chip${status ? '' : ' active'}`, href: link({ status: '' }) },
        'all',
        el('span', { class: 'n', text: m.total }),
      ),
      STATUSES.map((s) =>
        el(
          'a',
          { class: `chip${status === s ? ' active' : ''}`, href: link({ status: s }), 'data-status': s },
          s,
          el('span', { class: 'n', text: m.byStatus[s] ?? 0 }),
        ),
      ),
      el(
        'select',
        { 'aria-label': 'state', onchange: (e) => (location.hash = link({ state: e.target.value })) },
        el('option', { value: '', text: 'every state' }),
        stateNames.map((n) =>
          el('option', { value: n, selected: n === stateName, text: `${n} (${m.byState.get(n)?.total ?? 0})` }),
        ),
      ),
    ),
  )
  const list = state.list
  if (!list) return put(main, el('p', { class: 'empty', text: 'loading…' }))
  put(
    main,
    el(
      'div',
      { class: 'panel' },
      list.instances.length === 0
        ? el('p', { class: 'empty', text: 'No instance matches.' })
        : el(
            'table',
            { class: 'instances' },
            el(
              'thead',
              {},
              el(
                'tr',
                {},
                ['id', 'state', 'status', 'revision', 'updated'].map((h) => el('th', { text: h })),
              ),
            ),
            el(
              'tbody',
              {},
              list.instances.map((i) =>
                el(
                  'tr',
                  { 'data-id': i.id },
                  el('td', {}, el('a', { class: 'mono', href: instanceHref(i.id), text: i.id })),
                  el('td', { class: 'state', text: i.state }),
                  el('td', {}, el('span', { class: `status ${i.status}`, text: i.status })),
                  el('td', { text: i.revision }),
                  el('td', { text: time(i.updatedAt) }),
                ),
              ),
            ),
          ),
      el(
        'div',
        { class: 'pager' },
        el(
          'button',
          {
            type: 'button',
            disabled: !q.get('after'),
            onclick: () => (location.hash = link({ after: state.cursors.pop() ?? '' })),
          },
          '← previous',
        ),
        el(
          'button',
          {
            type: 'button',
            disabled: !list.next,
            onclick: () => {
              state.cursors.push(q.get('after') ?? '')
              location.hash = link({ after: list.next })
            },
          },
          'next →',
        ),
      ),
    ),
  )
}

function table(headers, rows, empty) {
  if (rows.length === 0) return el('p', { class: 'empty', text: empty })
  return el(
    'table',
    {},
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        headers.map((h) => el('th', { text: h })),
      ),
    ),
    el('tbody', {}, rows),
  )
}

function describe(entry) {
  const e = entry.event && typeof entry.event === 'object' ? entry.event : {}
  switch (entry.kind) {
    case 'start':
      return 'started'
    case 'timer':
      return `after ${e.delay}`
    case 'activity.done':
      return `done ${e.activity}`
    case 'activity.attempt':
      return `attempt ${e.attempt} of ${e.activity} failed: ${e.error?.message ?? ''}${e.retryAt ? `; retry at ${time(e.retryAt)}` : ''}`
    case 'activity.error':
      return `error ${e.activity}: ${e.error?.message ?? ''}`
    case 'failed':
      return `failed: ${e.message ?? e.error?.message ?? ''}`
    case 'child.done':
      return `child ${e.instanceId} (${e.machine}) ended in ${e.state}`
    case 'child.error':
      return `child ${e.instanceId} (${e.machine}) failed: ${e.error?.message ?? ''}`
    case 'cancelled':
      return `cancelled: ${e.reason ?? ''}`
    default:
      return String(e.type ?? entry.kind)
  }
}

export function renderInstance(main) {
  const detail = state.detail
  if (!detail) return put(main, el('p', { class: 'empty', text: 'loading…' }))
  const { instance: i, history } = detail
  void loadDiagram(i.machine, i.version, i.id)
  const m = machineVersions().find((v) => v.id === i.machine && v.version === i.version)
  put(
    main,
    el(
      'p',
      {},
      el('a', {
        href: overviewHref({ machine: i.machine, version: i.version }),
        text: `← ${i.machine} v${i.version}`,
      }),
    ),
    el(
      'h1',
      {},
      el('span', { class: 'mono', id: 'instance-id', text: i.id }),
      el('span', { class: 'state', id: 'instance-state', text: i.state }),
      el('span', { class: `status ${i.status}`, id: 'instance-status', text: i.status }),
    ),
    i.failure
      ? el(
          'div',
          { class: 'error-box', id: 'failure' },
          `Failed${i.failure.activity ? ` in ${i.failure.activity}` : ''} at ${time(i.failure.at)}: ${i.failure.message}${i.failure.code ? ` (${i.failure.code})` : ''}`,
        )
      : null,
    el(
      'div',
      { class: 'grid' },
      el('div', {}, diagramPanel({ byState: m?.byState, current: i.state })),
      el(
        'div',
        {},
        el(
          'div',
          { class: 'panel' },
          el(
            'dl',
            { class: 'meta' },
            [
              ['machine', `${i.machine} v${i.version}`],
              ['revision', i.revision],
              ['created', time(i.createdAt)],
              ['updated', time(i.updatedAt)],
            ].map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]),
          ),
        ),
        el('h2', { text: 'Context' }),
        el('div', { class: 'panel' }, el('pre', { class: 'json', id: 'context', text: json(i.context) })),
      ),
    ),
    el('h2', { text: 'Pending timers' }),
    el(
      'div',
      { class: 'panel', id: 'timers' },
      table(
        ['after', 'deadline', 'time left'],
        i.timers.map((t) =>
          el(
            'tr',
            {},
            el('td', { text: t.delay }),
            el('td', { text: time(t.deadline) }),
            el('td', { class: 'left', 'data-at': t.deadline, text: left(t.deadline) }),
          ),
        ),
        'No timer armed.',
      ),
    ),
    el('h2', { text: 'Pending activity' }),
    el(
      'div',
      { class: 'panel', id: 'tasks' },
      table(
        ['activity', 'attempt', 'next run', 'last error', 'idempotency key'],
        i.tasks.map((t) =>
          el(
            'tr',
            {},
            el('td', { class: 'state', text: t.activity }),
            el('td', { text: t.attempt }),
            el(
              'td',
              {},
              time(t.runAt),
              ' ',
              el('span', { class: 'note left', 'data-at': t.runAt, text: left(t.runAt) }),
            ),
            el('td', { text: t.lastError ? `${t.lastError.name}: ${t.lastError.message}` : '–' }),
            el('td', { class: 'mono', text: t.idempotencyKey }),
          ),
        ),
        'No activity pending.',
      ),
    ),
    el('h2', { text: `History (${history.length})` }),
    el(
      'div',
      { class: 'panel' },
      el(
        'ol',
        { class: 'timeline', id: 'history' },
        history.map((h) => {
          const details = el(
            'details',
            { ontoggle: (e) => (e.target.open ? state.openDetails.add(h.seq) : state.openDetails.delete(h.seq)) },
            el('summary', { text: 'event' }),
            el('pre', { class: 'json', text: json(h.event) }),
          )
          details.open = state.openDetails.has(h.seq)
          return el(
            'li',
            { class: `k-${h.kind.replace('.', '-')}`, 'data-seq': h.seq },
            el('span', { class: 'when mono', text: `#${h.seq} ${time(h.at)}` }),
            el('span', { class: 'kind', text: h.kind }),
            el('span', { class: 'state', text: h.from === null ? h.to : `${h.from} → ${h.to}` }),
            ' ',
            el('span', { class: 'what', text: describe(h) }),
            details,
          )
        }),
      ),
    ),
  )
}
