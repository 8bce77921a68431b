// The demo summary's lines read from Prometheus (distributed mode): after a scrape that follows
// the last order, so the counters hold every order of the run.
import type { FlowEnvironment } from './flow.js'
import { type FlowMetrics, readFlowMetrics } from './flow-metrics.js'
import { waitForScrape } from './prometheus.js'

const count = (n: number) => Math.round(n).toLocaleString('en-US')
const rate = (n: number) => `${n.toFixed(1)}/s`

/** `seconds`: how long the run took (the window of the peak rates). */
export async function metricsSummary(flow: FlowEnvironment, seconds: number): Promise<string[]> {
  const targets = flow.prometheus
  if (!targets)
    return [
      '  prometheus    not running, so no metrics here: `bash scripts/services.sh up prometheus`, then run the demo again',
    ]
  let m: FlowMetrics
  try {
    await waitForScrape(targets, new Date())
    m = await readFlowMetrics(targets, seconds)
  } catch (error) {
    // The run itself went well: say what went wrong with the metrics, do not fail the demo for it.
    return [`  prometheus    could not read the run's metrics from ${targets.url}: ${(error as Error).message}`]
  }
  const topics = ['orders.created', 'shipments.create']
    .map((topic) => {
      const processed = Object.entries(m.processedBy)
        .filter(([key]) => key.startsWith(`${topic} `))
        .reduce((sum, [, n]) => sum + n, 0)
      return `${topic} ${count(m.sentBy[topic] ?? 0)} published, ${count(processed)} processed`
    })
    .join(' · ')
  const machines = Object.entries(m.transitions)
    .map(([machine, n]) => `${machine || '?'} ${count(n)}`)
    .join(' · ')
  const config = Object.entries(m.configUpdates)
    .map(([key, n]) => {
      const [service, outcome] = key.split(' ')
      return `${service} ${count(n)} ${outcome}`
    })
    .join(' · ')
  return [
    `  prometheus    ${targets.url} scraped ${targets.count} processes every 1 s (label run="${targets.run}"):`,
    `  HTTP          ${count(m.httpRequests)} requests, ${count(m.ordersPosted)} of them POST /orders; peak ${rate(m.httpPeakRate)}`,
    `  messages      ${count(m.processed)} processed, peak ${rate(m.processedPeakRate)}; ${topics}`,
    `  transitions   ${machines ? `${machines}; peak ${rate(m.transitionsPeakRate)}` : 'none recorded (backplane_workflow_transitions_total)'}`,
    `  activities    ${count(m.activityFailures)} failed attempts (the saga's steps are messages, not activities)`,
    `  timers        ${count(m.timersFired)} fired, lag p99 ${Number.isNaN(m.timerLagP99) ? '–' : `${(m.timerLagP99 * 1000).toFixed(0)} ms`}`,
    `  config        updates: ${config || 'none recorded (backplane_config_updates_total)'}`,
  ]
}
