#!/usr/bin/env node
// `npm run demo` (embedded) and `npm run demo -- --distributed [--broker kafka]`: places a stream
// of orders, shows them move through the flow, raises the payment failure rate halfway through
// (the services pick it up live), and ends with a summary checked against every service's data.
import { relative } from 'node:path'
import { parseArgs } from 'node:util'
import { collectTrace } from '@backplane/logging'
import { installTraceContext } from '@backplane/logging/trace-context'
import { catalog } from './catalog.js'
import type { ProcessName } from './cluster.js'
import { type BrokerKind, type FlowEnvironment, startFlow } from './flow.js'
import { EXAMPLE_ROOT } from './lib/paths.js'
import { type OrderRun, percentile, startOrderStream } from './load.js'
import { metricsSummary } from './metrics-summary.js'
import { serviceLogDirs, workflowStoreUrl } from './runtime.js'
import { SERVICE_NAMES } from './services/index.js'
import { startTelemetry, type Telemetry, telemetryOptionsFromEnv } from './telemetry.js'
import { verifyFlowSettled } from './verify.js'

const USAGE = `usage: npm run demo -- [--distributed [--broker nats|kafka] [--kill SERVICE]] [--orders N] [--rate N] [--dir DIR]

  (default)        every service in this process: memory:// messaging, SQLite, a watched YAML file
  --distributed    every service its own process: NATS JetStream or Kafka, PostgreSQL, etcd and the
                   standalone HTTP bridge (servers started by scripts/services.sh)
  --broker         distributed mode's broker (default nats)
  --kill           distributed mode: SIGKILL this service's process halfway through and restart it
                   a second later (orders, payment, inventory, shipping, analytics, notification)
  --orders, --rate how many orders, and how many per second (default 200 at 25/s)
  --dir            where data and logs go (default examples/order-flow/.demo)`

const STATES = [
  'created',
  'paymentPending',
  'paid',
  'stockReserved',
  'shipping',
  'releasing',
  'refunding',
  'delivered',
  'cancelled',
]

const tty = process.stdout.isTTY === true
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[22m` : s)
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[22m` : s)
const pct = (n: number, of: number) => (of === 0 ? '0%' : `${Math.round((100 * n) / of)}%`)
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const money = (cents: number) => (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'EUR' })

/** The command that opens the inspector on the orders' workflow store once the demo has ended. */
function inspectCommand(flow: FlowEnvironment, where: (path: string) => string): string {
  const store = workflowStoreUrl(flow.runtime, 'orders')
  return `npx backplane-workflow ui --store ${flow.runtime.postgresUrl ? `'${store}'` : where(store)}`
}

function progressLine(run: OrderRun, total: number): string {
  const width = 24
  const done = Math.round((width * run.finished) / total)
  const bar = `${'█'.repeat(done)}${'░'.repeat(width - done)}`
  const counts = run.counts()
  const live = STATES.filter((s) => counts[s])
    .map((s) => `${s} ${counts[s]}`)
    .join(' · ')
  return `  ${bar} ${String(run.placed).padStart(4)} placed, ${String(run.finished).padStart(4)} final  ${dim(live)}`
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      distributed: { type: 'boolean', default: false },
      broker: { type: 'string', default: 'nats' },
      orders: { type: 'string', default: '200' },
      rate: { type: 'string', default: '25' },
      dir: { type: 'string', default: `${EXAMPLE_ROOT}/.demo` },
      kill: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const count = Number(values.orders)
  const rate = Number(values.rate)
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const kill = values.kill as ProcessName | undefined
  if (
    !Number.isInteger(count) ||
    count < 1 ||
    !(rate > 0) ||
    (values.broker !== 'nats' && values.broker !== 'kafka') ||
    (kill !== undefined && (!values.distributed || !(SERVICE_NAMES as string[]).includes(kill)))
  ) {
    console.error(USAGE)
    return 2
  }
  const mode = values.distributed ? 'distributed' : 'embedded'
  // Embedded mode: this process is every service, so it runs the one SDK (one /metrics). In
  // distributed mode each service process runs its own; this one only places orders.
  const telemetry: Telemetry | undefined =
    mode === 'embedded' ? await startTelemetry(telemetryOptionsFromEnv(process.env, 'order-flow')) : undefined
  installTraceContext()
  const broker = values.broker as BrokerKind
  console.log(
    bold(
      mode === 'embedded'
        ? 'Order flow, embedded: six services in this process on memory:// messaging, SQLite and a watched config file'
        : `Order flow, distributed: six service processes and the HTTP bridge on ${broker === 'nats' ? 'NATS JetStream' : 'Kafka'}, PostgreSQL and etcd`,
    ),
  )
  const startedAt = Date.now()
  // Distributed mode: one database kept from run to run, like the broker's topics and groups.
  const flow: FlowEnvironment = await startFlow({
    mode,
    broker,
    dir: values.dir as string,
    database: 'order_flow_demo',
    freshDatabase: false,
  })
  const where = (path: string) => relative(process.cwd(), path) || '.'
  try {
    console.log(
      `  started in ${seconds(Date.now() - startedAt)}: order API ${flow.urls.orders}, analytics ${flow.urls.analytics}, bridge ${flow.urls.bridge}`,
    )
    console.log(`  workflow inspector ${flow.urls.orders}/workflows/ (the orders, live, while the demo runs)`)
    if (telemetry) console.log(`  metrics ${telemetry.metricsUrl} (Prometheus text format)`)
    console.log(
      `\nPlacing ${count} orders at ${rate}/s (one in four wants the ${catalog.find((p) => p.stock)?.name}, of which there are few)\n`,
    )

    const switchAt = Math.floor(count * 0.4)
    let configNote = ''
    let killNote = ''
    const run = await startOrderStream({
      ordersUrl: flow.urls.orders,
      brokerUrl: flow.runtime.brokerUrl,
      count,
      rate,
      onPlaced: async (index) => {
        const victim = kill ? flow.cluster?.processes.get(kill) : undefined
        if (victim && index === Math.floor(count / 2)) {
          const pid = victim.pid
          await victim.stop('SIGKILL')
          killNote = `killed ${kill} (pid ${pid}) with SIGKILL after order ${index + 1}`
          setTimeout(() => {
            victim.restart().then(
              () => (killNote = `restarted ${kill} (pid ${victim.pid})`),
              (error) => (killNote = `could not restart ${kill}: ${error.message}`),
            )
          }, 1000)
        }
        if (index !== switchAt - 1) return
        const place = await flow.setConfig('payment.failureRate', 0.5)
        configNote = `payment.failureRate 0.05 -> 0.5 in ${place.startsWith('etcd') ? place : where(place)} after order ${switchAt}`
      },
    })
    const placingStarted = Date.now()
    let lastPrinted = 0
    const ticker = setInterval(() => {
      if (tty) process.stdout.write(`\r\x1b[2K${progressLine(run, count)}`)
      else if (Date.now() - lastPrinted >= 2000) {
        lastPrinted = Date.now()
        console.log(progressLine(run, count))
      }
    }, 200)
    let noted = false
    let lastKillNote = ''
    const noteConfig = setInterval(() => {
      if (configNote && !noted) {
        noted = true
        if (tty) process.stdout.write('\r\x1b[2K')
        console.log(`  config: ${configNote}; the payment service reloads it live`)
      }
      if (killNote !== lastKillNote) {
        lastKillNote = killNote
        if (tty) process.stdout.write('\r\x1b[2K')
        console.log(`  crash: ${killNote}`)
      }
    }, 100)
    try {
      await run.placing
      const placedIn = Date.now() - placingStarted
      await run.settled(120_000)
      clearInterval(ticker)
      clearInterval(noteConfig)
      if (tty) process.stdout.write(`\r\x1b[2K${progressLine(run, count)}\n`)
      else console.log(progressLine(run, count))
      const allFinal = Date.now() - placingStarted

      const report = await verifyFlowSettled(flow.runtime, flow.urls.orders, 10_000)
      const orders = [...run.orders.values()]
      const latencies = orders.filter((o) => o.finishedAt).map((o) => (o.finishedAt as number) - o.sentAt)
      const declined = (from: number, to: number) => {
        const slice = orders.filter((o) => o.index >= from && o.index < to)
        const n = slice.filter((o) => o.reason === 'card declined').length
        return `${pct(n, slice.length)} (${n}/${slice.length})`
      }
      const reasons = new Map<string, number>()
      for (const o of orders)
        if (o.state === 'cancelled') reasons.set(o.reason ?? '?', (reasons.get(o.reason ?? '?') ?? 0) + 1)
      const counts = run.counts()
      const sales = (await (await fetch(`${flow.urls.analytics}/analytics/sales?period=hour`)).json()) as {
        buckets: { start: string; orders: number; revenueCents: number }[]
      }

      console.log(`\n${bold('Summary')}`)
      console.log(
        `  orders        ${count} placed in ${seconds(placedIn)}; all final after ${seconds(allFinal)} (${(count / (allFinal / 1000)).toFixed(1)} orders/s end to end)`,
      )
      console.log(`  final states  delivered ${counts.delivered ?? 0} · cancelled ${counts.cancelled ?? 0}`)
      console.log(`  cancelled     ${[...reasons].map(([r, n]) => `${r} ${n}`).join(' · ') || 'none'}`)
      console.log(`  compensation  ${report.refunded} orders were paid, then refunded by the saga (out of stock)`)
      console.log(
        `  hot reload    cards declined before the change ${declined(0, switchAt)}, after ${declined(switchAt, count)}`,
      )
      console.log(
        `  latency       p50 ${seconds(percentile(latencies, 50))} · p99 ${seconds(percentile(latencies, 99))} from the request to the final state (includes the delivery timer)`,
      )
      console.log(
        `  sales         ${sales.buckets.map((b) => `${b.start.slice(0, 13)}h: ${b.orders} orders, ${money(b.revenueCents)}`).join('; ')} (GET /analytics/sales)`,
      )
      console.log(`  inspector     ${inspectCommand(flow, where)} (the order workflows, after the run)`)
      if (report.problems.length === 0)
        console.log(
          `  checks        ok: ${report.charged} charges kept = ${report.byState.delivered ?? 0} delivered orders${report.orders > count ? ` (all ${report.orders} orders in the database)` : ''}, no double charge, stock consistent, read model agrees`,
        )
      else
        console.log(
          `  checks        ${report.problems.length} FAILED:\n    ${report.problems.slice(0, 10).join('\n    ')}`,
        )
      if (mode === 'distributed')
        for (const line of await metricsSummary(flow, (Date.now() - placingStarted) / 1000)) console.log(line)

      const example = orders.find((o) => o.state === 'delivered') ?? orders[0]
      if (example?.traceId) {
        const logs = where(flow.runtime.logsDir)
        console.log(
          `\n${bold(`One order's trace: ${example.id} (${example.state}${example.reason ? `, ${example.reason}` : ''})`)}`,
        )
        const lines = await collectTrace(example.traceId, serviceLogDirs(flow.runtime))
        for (const { record } of lines.slice(0, 24)) {
          const time = new Date(Number(record.time)).toISOString().slice(11, 23)
          console.log(`  ${dim(time)} ${String(record['service.name']).padEnd(12)} ${record.msg}`)
        }
        if (lines.length > 24) console.log(dim(`  … ${lines.length - 24} more`))
        console.log(
          `  ${lines.length} log lines from ${new Set(lines.map((l) => l.record['service.name'])).size} services share trace ${example.traceId}. Again with:`,
        )
        console.log(`  npx backplane-logs trace ${example.traceId} ${logs}/*`)
      }
      return report.problems.length === 0 ? 0 : 1
    } finally {
      clearInterval(ticker)
      clearInterval(noteConfig)
      await run.close()
    }
  } finally {
    await flow.close()
    await telemetry?.shutdown()
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`\norder-flow demo failed: ${(error as Error)?.message ?? error}`)
    process.exit(1)
  },
)
