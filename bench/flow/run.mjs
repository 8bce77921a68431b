// Orders/s and end-to-end latency of the order flow (examples/order-flow) in embedded mode (one
// process, memory://, SQLite) and distributed mode (7 processes, NATS JetStream, PostgreSQL,
// etcd). Two loads per mode: saturation (orders placed as fast as 64 concurrent clients can: the
// throughput) and a steady 30 orders/s (the latency of a flow that keeps up). Latency = POST
// /orders sent → the order's final `orders.status` received, through payment, inventory, shipping
// (delivery timer 10 ms) and the saga's refunds. Every run's data is checked (every order final,
// money kept == delivered orders, stock and read model consistent) before its figures are used.
// Rounds interleave the modes. Writes the `## flow` section of BENCHMARKS.md.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { median } from '../lib/stats.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- flow'
const ROUNDS = Number(process.env.BENCH_FLOW_ROUNDS ?? 3)
const isDefaultRun = process.env.BENCH_FLOW_ROUNDS === undefined

const LOADS = [
  { id: 'saturation', orders: 1000, rate: 10_000, label: 'saturation (1,000 orders, 64 clients)' },
  { id: 'steady', orders: 300, rate: 30, label: 'steady 30 orders/s (300 orders)' },
]
const MODES = [
  { id: 'embedded', label: 'embedded: 1 process, memory://, SQLite' },
  { id: 'distributed', label: 'distributed: 7 processes, NATS JetStream, PostgreSQL, etcd' },
]

if (!existsSync(join(root, 'examples', 'order-flow', 'dist', 'index.js'))) {
  process.stdout.write('building the packages and the example…\n')
  if (spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' }).status !== 0) process.exit(1)
}

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const ms = (n) => (n >= 1000 ? `${fmt(n / 1000, 2)} s` : `${fmt(n)} ms`)

const loadStart = loadavg()
  .map((n) => n.toFixed(2))
  .join(' ')
const results = new Map()
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? MODES : [...MODES].reverse()
  for (const load of LOADS) {
    for (const mode of order) {
      const key = `${mode.id}/${load.id}`
      process.stdout.write(`round ${round + 1}/${ROUNDS}: ${key}… `)
      const child = spawnSync(
        process.execPath,
        [join(here, 'worker.mjs'), mode.id, String(load.orders), String(load.rate)],
        {
          cwd: root,
          encoding: 'utf8',
          timeout: 900_000,
        },
      )
      const line = child.stdout.trim().split('\n').at(-1) ?? ''
      let result
      try {
        result = JSON.parse(line)
      } catch {
        process.stdout.write(`failed (exit ${child.status}): ${child.stderr.slice(-800)}\n`)
        continue
      }
      if (result.problems.length > 0) {
        process.stdout.write(`discarded: ${result.problems.slice(0, 3).join('; ')}\n`)
        continue
      }
      process.stdout.write(`${fmt(result.ordersPerSecond, 1)} orders/s, p50 ${ms(result.p50)}, p99 ${ms(result.p99)}\n`)
      if (!results.has(key)) results.set(key, [])
      results.get(key).push(result)
    }
  }
}
const loadEnd = loadavg()
  .map((n) => n.toFixed(2))
  .join(' ')

const rows = []
for (const load of LOADS) {
  for (const mode of MODES) {
    const runs = results.get(`${mode.id}/${load.id}`) ?? []
    if (runs.length === 0) {
      rows.push(`| ${mode.label} | ${load.label} | no valid run | | | | |`)
      continue
    }
    const rates = runs.map((r) => r.ordersPerSecond)
    const delivered = median(runs.map((r) => r.delivered / r.orders))
    rows.push(
      `| ${mode.label} | ${load.label} | ${fmt(median(rates), 1)} | ${fmt(Math.min(...rates), 1)}–${fmt(Math.max(...rates), 1)} | ${ms(median(runs.map((r) => r.p50)))} | ${ms(median(runs.map((r) => r.p99)))} (${ms(Math.min(...runs.map((r) => r.p99)))}–${ms(Math.max(...runs.map((r) => r.p99)))}) | ${runs.length}/${ROUNDS} runs consistent; ${Math.round(delivered * 100)}% delivered |`,
    )
  }
}
const cpu = cpus()[0]?.model?.split(' ').slice(0, 2).join(' ') ?? 'unknown'
const section = `## flow

Command: \`${COMMAND}\` · ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${cpus().length} (${cpu}) · load average (1/5/15 min) ${loadStart} at start, ${loadEnd} at end · NATS, PostgreSQL and etcd on the same machine

The order flow of [examples/order-flow](examples/order-flow/README.md), driven over HTTP: each order goes order API → workflow commit + outbox → payment (simulated provider, 5–40 ms, 5% declined) → inventory (SQL transaction) → shipping (its own workflow, delivery timer 10 ms) → delivered, or through the refund saga when the limited item (one order in four) is out of stock. Throughput = orders / (first POST → last order final). Latency = POST sent → final \`orders.status\` received by the load generator. Each cell: ${ROUNDS} runs, each in a fresh process with fresh data (distributed: a fresh PostgreSQL database), modes interleaved; a run counts only if every order ended final with money kept == delivered orders, stock and read model consistent. No anchor exists for a whole application flow: compare the two modes, and the figures with the per-package benchmarks above.

| mode | load | orders/s (median) | spread (min–max) | latency p50 (median) | p99 (median, min–max) | checked |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}


Notes: a delivered order publishes about 13 messages (6 of them \`orders.status\`, read by analytics, the bridge and the load generator) and makes about 16 commits across the services' databases. Distributed mode runs 7 Node processes, nats-server, PostgreSQL and etcd on the same 2 cores, so its saturation figure is this machine's CPU more than any one package, and its steady-load latency is mostly queueing behind that CPU (load average above 6 during those runs).
`
publishSection('flow', section, { isDefaultRun, overrides: 'BENCH_FLOW_ROUNDS' })
