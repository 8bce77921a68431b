// Draws a diagram the server laid out (GET api/diagram) as inline SVG: states, transitions, the
// number of instances in each state, the current state highlighted.
import { STATUSES, svg } from './dom.js'

export function drawDiagram(diagram, { byState, current, onPick }) {
  const root = svg('svg', {
    class: 'diagram',
    viewBox: `0 0 ${diagram.width} ${diagram.height}`,
    width: diagram.width,
    role: 'img',
    'aria-label': `state diagram of ${diagram.machine} v${diagram.version}`,
  })
  root.append(
    svg(
      'defs',
      {},
      svg(
        'marker',
        { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }),
      ),
    ),
  )
  const labels = []
  for (const edge of diagram.edges) {
    root.append(svg('path', { d: edge.path, class: 'edge', 'marker-end': 'url(#arrow)' }))
    const text = svg('text', { class: 'edge-label', x: edge.labelX, y: edge.labelY, 'text-anchor': 'middle' })
    edge.labels.forEach((line, i) => {
      text.append(
        svg('tspan', {
          x: edge.labelX,
          dy: i === 0 ? `${-(edge.labels.length - 1) * 0.6 + 0.35}em` : '1.2em',
          text: line,
        }),
      )
    })
    labels.push(text)
  }
  if (diagram.start) {
    root.append(svg('circle', { class: 'start', cx: diagram.start.cx, cy: diagram.start.cy, r: 6 }))
    root.append(svg('path', { d: diagram.start.path, class: 'edge', 'marker-end': 'url(#arrow)' }))
  }
  for (const node of diagram.nodes) {
    const counts = byState?.get(node.name)
    const classes = ['node']
    if (node.final) classes.push('final')
    if (counts?.total) classes.push('occupied')
    if (node.name === current) classes.push('current')
    if (onPick) classes.push('clickable')
    const g = svg('g', { class: classes.join(' '), 'data-state': node.name })
    const tip = counts
      ? `${node.name}: ${STATUSES.filter((s) => counts[s])
          .map((s) => `${counts[s]} ${s}`)
          .join(', ')}`
      : node.name
    g.append(svg('title', { text: tip }))
    g.append(svg('rect', { class: 'box', x: node.x, y: node.y, width: node.width, height: node.height, rx: 9 }))
    const cx = node.x + node.width / 2
    g.append(
      svg('text', {
        class: 'name',
        x: cx,
        y: node.y + (node.invoke ? 20 : node.height / 2 + 4.5),
        'text-anchor': 'middle',
        text: node.name,
      }),
    )
    if (node.invoke)
      g.append(
        svg('text', {
          class: 'invoke',
          x: cx,
          y: node.y + 38,
          'text-anchor': 'middle',
          text: `invoke ${node.invoke}`,
        }),
      )
    if (counts?.total) {
      const label = String(counts.total)
      const w = 12 + label.length * 7
      const badge = svg('g', { class: `badge${counts.failed ? ' failed' : ''}`, 'data-count': counts.total })
      badge.append(svg('rect', { x: node.x + node.width - w / 2 - 4, y: node.y - 9, width: w, height: 18, rx: 9 }))
      badge.append(svg('text', { x: node.x + node.width - 4, y: node.y + 4, 'text-anchor': 'middle', text: label }))
      g.append(badge)
    }
    if (onPick) g.addEventListener('click', () => onPick(node.name))
    root.append(g)
  }
  // Label backgrounds need the rendered text's size: measured once the SVG is in the page.
  for (const text of labels) root.append(text)
  requestAnimationFrame(() => {
    for (const text of labels) {
      if (!text.isConnected || !text.textContent) continue
      const box = text.getBBox()
      text.before(
        svg('rect', {
          class: 'label-bg',
          x: box.x - 3,
          y: box.y - 1,
          width: box.width + 6,
          height: box.height + 2,
          rx: 3,
        }),
      )
    }
  })
  return root
}
