// Messaging throughput and latency: @backplane/messaging on each broker against the raw client
// doing the same work (same batches of 100, same acks, JSON both ways), in one run on one
// machine. Each measurement is its own process (worker.mjs); rounds interleave ours and raw.
// Throughput: COUNT messages published in batches of 100 (8 batches in flight) until the last
// one was handled. Latency: one message at a time, publish to handler. Writes the
// `## messaging` section of BENCHMARKS.md. Run with `npm run bench -- messaging`;
// BENCH_MESSAGING_BROKERS=jetstream (a comma-separated list) measures only those rows and, like
// BENCH_MESSAGING_ROUNDS, leaves BENCHMARKS.md as it is.

import { spawnSync } from 'node:child_process'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt } from '../lib/build.mjs'
import { median } from '../lib/stats.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- messaging'
const ROUNDS = Number(process.env.BENCH_MESSAGING_ROUNDS ?? 3)
const ONLY = process.env.BENCH_MESSAGING_BROKERS?.split(',').filter(Boolean)
const isDefaultRun = process.env.BENCH_MESSAGING_ROUNDS === undefined && ONLY === undefined

const BROKERS = [
  {
    name: 'memory',
    ours: 'memory/ours',
    raw: undefined,
    floor: 'memory/floor',
    count: 200_000,
    latency: 2000,
    target: '>= 0.9x of the floor, in the same run',
  },
  { name: 'kafka', ours: 'kafka/ours', raw: 'kafka/raw', count: 20_000, latency: 100, target: '>= 0.9x raw kafkajs' },
  {
    name: 'jetstream',
    ours: 'jetstream/ours',
    raw: 'jetstream/raw',
    count: 20_000,
    latency: 1000,
    target: '>= 0.9x raw nats.js (v3)',
  },
].filter((broker) => ONLY === undefined || ONLY.includes(broker.name))
if (BROKERS.length === 0)
  throw new Error(`BENCH_MESSAGING_BROKERS names no broker: expected memory, kafka or jetstream`)

function run(cmd, args, env = process.env) {
  return spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: 600_000 })
}

function servicesEnv() {
  if (process.env.KAFKA_BROKERS && process.env.NATS_URL) return process.env
  const up = run('bash', ['scripts/services.sh', 'up', 'kafka', 'nats'])
  if (up.status !== 0) throw new Error(`scripts/services.sh up failed:\n${up.stderr}`)
  const env = { ...process.env }
  for (const line of run('bash', ['scripts/services.sh', 'env']).stdout.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1)
  }
  return env
}

function measure(env, variant, mode, count) {
  const result = spawnSync(process.execPath, [join(here, 'worker.mjs'), variant, mode, String(count)], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 300_000,
  })
  const line = result.stdout.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line)
  } catch {
    return { variant, mode, error: (result.stderr || result.stdout || `exit ${result.status}`).trim().slice(-400) }
  }
}

const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const ms = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')

ensureBuilt('messaging', ['index.js', 'memory.js', 'kafka.js', 'nats.js'])
const env = servicesEnv()
const load = loadavg()
const results = {}
for (let round = 1; round <= ROUNDS; round++) {
  for (const broker of BROKERS) {
    const other = broker.raw ?? broker.floor
    const sides = round % 2 === 0 ? [other, broker.ours] : [broker.ours, other]
    for (const variant of sides.filter(Boolean)) {
      const t = measure(env, variant, 'throughput', broker.count)
      const l = measure(env, variant, 'latency', broker.latency)
      results[variant] ??= []
      results[variant].push({ t, l })
      const state = t.error
        ? `error: ${t.error.split('\n').at(-1)}`
        : `${fmt(t.msgPerSec)} msg/s, handled ${t.handled}/${broker.count}, dup ${t.duplicates}`
      process.stdout.write(
        `round ${round} ${variant.padEnd(16)} ${state}; latency p50 ${ms(l.p50Ms)} ms p99 ${ms(l.p99Ms)} ms\n`,
      )
    }
  }
}

function summary(variant) {
  const runs = results[variant] ?? []
  const ok = runs.filter((r) => !r.t.error)
  const rates = ok.map((r) => r.t.msgPerSec)
  return {
    rate: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    p50: median(runs.filter((r) => !r.l.error).map((r) => r.l.p50Ms)),
    p99: median(runs.filter((r) => !r.l.error).map((r) => r.l.p99Ms)),
    complete: ok.filter((r) => r.t.handled === r.t.count).length,
    runs: runs.length,
    duplicates: Math.max(0, ...ok.map((r) => r.t.duplicates)),
    error: runs.find((r) => r.t.error)?.t.error,
  }
}

const rows = []
const targets = []
for (const broker of BROKERS) {
  const o = summary(broker.ours)
  const r = broker.raw ? summary(broker.raw) : undefined
  const ratio = r ? o.rate / r.rate : undefined
  rows.push(
    `| ${broker.name} | @backplane/messaging | ${fmt(o.rate)} | ${fmt(o.min)}–${fmt(o.max)} | ${ratio === undefined ? '—' : `${ratio.toFixed(2)}×`} | ${ms(o.p50)} | ${ms(o.p99)} | ${o.complete}/${o.runs} | ${o.duplicates} |`,
  )
  if (r) {
    rows.push(
      `| ${broker.name} | raw client | ${fmt(r.rate)} | ${fmt(r.min)}–${fmt(r.max)} | 1.00× | ${ms(r.p50)} | ${ms(r.p99)} | ${r.complete}/${r.runs} | ${r.duplicates} |`,
    )
  }
  const f = broker.floor ? summary(broker.floor) : undefined
  if (f) {
    rows.push(
      `| ${broker.name} | floor: the required per-message work alone (id, time, JSON to bytes and back), no broker | ${fmt(f.rate)} | ${fmt(f.min)}–${fmt(f.max)} | ours ÷ floor ${(o.rate / f.rate).toFixed(2)}× | — | — | ${f.complete}/${f.runs} | ${f.duplicates} |`,
    )
  }
  // memory has no raw client: its bound is the floor, the work any in-process broker must do.
  const met = broker.raw ? ratio >= 0.9 : f !== undefined && o.rate / f.rate >= 0.9
  const figure = broker.raw
    ? `${ratio?.toFixed(2)}× (${fmt(o.rate)} vs ${fmt(r?.rate)} msg/s)`
    : `${f ? (o.rate / f.rate).toFixed(2) : 'n/a'}× (${fmt(o.rate)} vs the floor's ${fmt(f?.rate)} msg/s)`
  targets.push(
    `- ${broker.name}: ${broker.target}: **${met ? 'met' : 'not met'}**: ${figure}${o.error ? `; a run failed: ${o.error.split('\n').at(-1)}` : ''}`,
  )
}

const section = [
  '## messaging',
  '',
  `Command: \`${COMMAND}\` · ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${availableParallelism()} (${cpus()[0]?.model.trim() ?? '?'}) · load ${load.map((l) => l.toFixed(2)).join(' ')} at start`,
  '',
  `Each cell: median of ${ROUNDS} rounds, ours and raw interleaved (order swapped each round), each measurement a fresh process. Throughput: messages published in batches of 100 with 8 batches in flight, from the first publish until every message was handled (each index checked, duplicates counted); both sides JSON-encode on publish and decode in the handler, the raw side acks like ours (Kafka acks all, JetStream PubAck and explicit ack). Latency: one message at a time, publish call to handler. memory has no raw client; its floor row does only the per-message work the envelope requires (a random UUID, the ISO publish time, JSON encoded to bytes and decoded again) in a plain loop, measured in the same rounds: a bound on what any in-process broker keeping that contract can reach here. Servers: the librdkafka mock cluster (1 broker, 4 partitions) and nats-server 2.9 with JetStream, from scripts/services.sh, on loopback.`,
  '',
  '| broker | side | msg/s (median) | spread | ratio to raw | latency p50 ms | latency p99 ms | complete runs | max duplicates |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
  '',
  'Targets:',
  '',
  ...targets,
  '',
].join('\n')
publishSection('messaging', section, {
  isDefaultRun,
  overrides: ONLY === undefined ? 'BENCH_MESSAGING_ROUNDS' : 'BENCH_MESSAGING_BROKERS',
})
