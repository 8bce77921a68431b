// One measurement of the order flow in a fresh process (memory:// state and module caches start
// empty): node worker.mjs <embedded|distributed> <orders> <rate per second>. Prints one JSON line.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  dropDatabase,
  percentile,
  startFlow,
  startOrderStream,
  verifyFlowSettled,
} from '../../examples/order-flow/dist/index.js'

const [mode, ordersArg, rateArg] = process.argv.slice(2)
const count = Number(ordersArg)
const rate = Number(rateArg)
const dir = mkdtempSync(join(tmpdir(), `bench-flow-${mode}-`))
const database = `order_flow_bench_${process.pid}`

const flow = await startFlow({
  mode,
  broker: 'nats',
  dir,
  database,
  // The delivery timer would add a constant 2 s to every order: keep it short to see the flow itself.
  settings: { 'shipping.deliveryDelay': '10ms' },
})
let result
try {
  const started = performance.now()
  const run = await startOrderStream({
    ordersUrl: flow.urls.orders,
    brokerUrl: flow.runtime.brokerUrl,
    count,
    rate,
    concurrency: 64,
    prefix: `bench-${process.pid}`,
  })
  await run.settled(600_000)
  const elapsedMs = performance.now() - started
  await run.close()
  const orders = [...run.orders.values()]
  const latencies = orders.map((o) => o.finishedAt - o.sentAt)
  const report = await verifyFlowSettled(flow.runtime, flow.urls.orders)
  result = {
    mode,
    orders: count,
    rate,
    elapsedMs,
    ordersPerSecond: count / (elapsedMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    delivered: report.byState.delivered ?? 0,
    cancelled: report.byState.cancelled ?? 0,
    problems: report.problems,
  }
} finally {
  await flow.close()
  if (mode === 'distributed') {
    const base = new URL(flow.runtime.postgresUrl)
    base.pathname = '/postgres'
    await dropDatabase(base.toString(), database).catch(() => undefined)
  }
  rmSync(dir, { recursive: true, force: true })
}
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
