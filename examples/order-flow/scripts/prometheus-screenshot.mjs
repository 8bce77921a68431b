#!/usr/bin/env node
// Saves a screenshot of Prometheus's graph page for the order flow (docs/order-flow-prometheus.png),
// rendered by headless Chromium (`bash scripts/services.sh install chromium`) through playwright-core.
// Run a distributed demo first: the graphs show the last --range of what Prometheus stored.
//   npm run demo -- --distributed --orders 600 --rate 25
//   node examples/order-flow/scripts/prometheus-screenshot.mjs [--range 3m] [--out FILE]
import { mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const { values } = parseArgs({
  options: {
    range: { type: 'string', default: '3m' },
    out: { type: 'string', default: join(root, 'docs', 'order-flow-prometheus.png') },
    prometheus: { type: 'string', default: process.env.PROMETHEUS_URL ?? 'http://127.0.0.1:49090' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
})

// Two panels: messages each service handles per second, and the workflows' transitions per second.
const panels = [
  'sum by (service) (rate(messaging_process_duration_count{job="backplane"}[10s]))',
  'sum by (workflow_machine, workflow_history_kind) (rate(backplane_workflow_transitions_total{job="backplane"}[10s]))',
]
const params = new URLSearchParams()
panels.forEach((expr, i) => {
  params.set(`g${i}.expr`, expr)
  params.set(`g${i}.tab`, '0') // the graph, not the table
  params.set(`g${i}.stacked`, '0')
  params.set(`g${i}.show_exemplars`, '0')
  params.set(`g${i}.range_input`, values.range)
})
const url = `${values.prometheus}/graph?${params}`

const ready = await fetch(`${values.prometheus}/-/ready`).catch(() => undefined)
if (!ready?.ok) {
  console.error(`Prometheus does not answer at ${values.prometheus}: bash scripts/services.sh up prometheus`)
  process.exit(1)
}
const browser = await chromium.launch({ executablePath: values.chromium, headless: true })
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1150 }, deviceScaleFactor: 1 })
  await page.goto(url, { waitUntil: 'networkidle' })
  // Debian's Prometheus serves the classic UI: one rickshaw chart per panel, drawn once its legend
  // lists the query's series.
  await page.waitForFunction((n) => document.querySelectorAll('.rickshaw_legend').length >= n, panels.length, {
    timeout: 30_000,
  })
  const empty = await page.$$eval(
    '.rickshaw_legend',
    (legends) => legends.filter((l) => !l.querySelector('.line')).length,
  )
  if (empty > 0)
    throw new Error(`${empty} panel(s) without data in the last ${values.range}: run the distributed demo first`)
  const out = resolve(values.out)
  mkdirSync(dirname(out), { recursive: true })
  await page.screenshot({ path: out, fullPage: true })
  console.log(`saved ${out}\n  from ${url}`)
} finally {
  await browser.close()
}
