// Config client: put → listener latency against a raw etcd3 prefix watch, and `get('a.b.c')` cost
// against convict and node-config. Every measurement runs in its own fresh process (latency-worker,
// get-worker); rounds are interleaved with the order alternated; each worker checks its side's
// output (every value arrives, in order; get returns the stored value) before its figures are used.
// Starts etcd with scripts/services.sh when ETCD_ENDPOINTS is unset. Writes the `## config`
// section of BENCHMARKS.md. Run it with `npm run bench -- config`.

import { execFileSync, spawnSync } from 'node:child_process'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt as buildIfNeeded } from '../lib/build.mjs'
import { runWorker } from '../lib/worker.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- config'

// Overridable for a quick try; a run with other settings does not touch BENCHMARKS.md.
const UPDATES = Number(process.env.BENCH_CONFIG_UPDATES ?? 2_000)
const ROUNDS = Number(process.env.BENCH_CONFIG_ROUNDS ?? 10)
const GET_ITERATIONS = Number(process.env.BENCH_CONFIG_GET_ITERATIONS ?? 5_000_000)
const GET_ROUNDS = 5
const isDefaultRun = ['UPDATES', 'ROUNDS', 'GET_ITERATIONS'].every(
  (k) => process.env[`BENCH_CONFIG_${k}`] === undefined,
)
const PER_BLOCK = Math.ceil(UPDATES / ROUNDS)
const WORKER_TIMEOUT_MS = 120_000

function ensureBuilt() {
  buildIfNeeded('config-client', ['index.js', 'etcd.js'])
}

/** ETCD_ENDPOINTS from the environment, or a local etcd started (and later stopped) with scripts/services.sh. */
function ensureEtcd() {
  if (process.env.ETCD_ENDPOINTS) return { endpoints: process.env.ETCD_ENDPOINTS, stop: () => {} }
  const services = join(root, 'scripts', 'services.sh')
  const wasRunning = spawnSync('bash', [services, 'status', 'etcd'], { cwd: root }).status === 0
  if (!wasRunning) {
    process.stdout.write('ETCD_ENDPOINTS is unset: starting etcd with scripts/services.sh…\n')
    const up = spawnSync('bash', [services, 'up', 'etcd'], { cwd: root, stdio: 'inherit' })
    if (up.status !== 0) {
      process.stderr.write('could not start etcd\n')
      process.exit(1)
    }
  }
  const env = execFileSync('bash', [services, 'env'], { cwd: root, encoding: 'utf8' })
  const endpoints = /^ETCD_ENDPOINTS=(.*)$/m.exec(env)?.[1]
  if (!endpoints) {
    process.stderr.write('scripts/services.sh env printed no ETCD_ENDPOINTS\n')
    process.exit(1)
  }
  const stop = () => {
    if (!wasRunning) spawnSync('bash', [services, 'down', 'etcd'], { cwd: root, stdio: 'ignore' })
  }
  return { endpoints, stop }
}

function runScript(script, args) {
  return runWorker(join(here, script), args, { cwd: root, timeoutMs: WORKER_TIMEOUT_MS })
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}
const median = (xs) => quantile(xs, 0.5)
const fmtMs = (n) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : 'n/a')
const fmtNs = (n) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ns` : 'n/a')
const fmtX = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a')
const met = (cond) => (cond ? '**met**' : '**not met**')

async function latency(endpoints) {
  const sides = [
    { id: 'raw', label: 'raw etcd3 prefix watch (`watcher.on("put")`) (anchor)' },
    { id: 'client', label: '@backplane/config-client, default options (`config.watch("bench.value")`)' },
  ]
  const samples = { raw: [], client: [] }
  const publishMs = []
  const perRound = []
  const problems = []
  const runId = `${process.pid}-${Date.now().toString(36)}`
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['raw', 'client'] : ['client', 'raw']
    const p99s = {}
    for (const id of order) {
      const prefix = `/bench/config/${runId}/${id}-${round}/`
      const { result, code, signal, stderr } = await runScript('latency-worker.mjs', [
        id,
        String(PER_BLOCK),
        endpoints,
        prefix,
      ])
      if (!result) {
        const why = signal ? `killed (${signal})` : `exit ${code}`
        problems.push(`round ${round + 1} ${id}: worker ${why}: ${stderr.split('\n').slice(-3).join(' | ')}`)
        process.stdout.write(`  round ${round + 1} ${id.padEnd(6)} FAILED: ${why}\n`)
        continue
      }
      if (result.warmupMismatches > 0 || result.mismatches > 0)
        problems.push(
          `round ${round + 1} ${id}: ${result.warmupMismatches + result.mismatches} value(s) arrived out of order or wrong`,
        )
      if (result.samples.length !== PER_BLOCK)
        problems.push(`round ${round + 1} ${id}: ${result.samples.length} of ${PER_BLOCK} updates measured`)
      samples[id].push(...result.samples)
      publishMs.push(...(result.publishMs ?? []))
      p99s[id] = quantile(result.samples, 0.99)
      process.stdout.write(
        `  round ${String(round + 1).padStart(2)} ${id.padEnd(6)} p50 ${fmtMs(median(result.samples))}  p99 ${fmtMs(p99s[id])}  max ${fmtMs(Math.max(...result.samples))}\n`,
      )
    }
    perRound.push(p99s)
  }
  // Leave no bench keys behind in a shared etcd.
  spawnSync(
    process.execPath,
    [
      '-e',
      `const {Etcd3}=require('etcd3');const c=new Etcd3({hosts:${JSON.stringify(endpoints.split(','))}});Promise.all([c.delete().prefix('/bench/config/${runId}/').exec(),c.delete().prefix('/.backplane/releases/'+encodeURIComponent('/bench/config/${runId}/')).exec()]).finally(()=>c.close())`,
    ],
    { cwd: root },
  )
  return { sides, samples, perRound, problems, publishMs }
}

async function getCost() {
  const variants = [
    { id: 'client', label: "@backplane/config-client `config.get('a.b.c')`" },
    { id: 'convict', label: "convict `conf.get('a.b.c')`" },
    { id: 'node-config', label: "node-config `config.get('a.b.c')`" },
  ]
  const runs = Object.fromEntries(variants.map((v) => [v.id, []]))
  const problems = []
  for (let round = 0; round < GET_ROUNDS; round++) {
    const order = variants.map((_, k) => variants[(k + round) % variants.length].id)
    for (const id of order) {
      const { result, code, signal, stderr } = await runScript('get-worker.mjs', [id, String(GET_ITERATIONS)])
      if (!result) {
        const why = signal ? `killed (${signal})` : `exit ${code}`
        problems.push(`${id}: worker ${why}: ${stderr.split('\n').slice(-3).join(' | ')}`)
        continue
      }
      runs[id].push(...result.nsPerOp)
      process.stdout.write(`  get round ${round + 1} ${id.padEnd(11)} ${result.nsPerOp.map(fmtNs).join(' / ')}\n`)
    }
  }
  return { variants, runs, problems }
}

async function main() {
  ensureBuilt()
  const { endpoints, stop } = ensureEtcd()
  const startedAt = new Date()
  const load = loadavg()
  process.stdout.write(
    `config bench: latency ${ROUNDS} rounds × ${PER_BLOCK} updates per side, get ${GET_ROUNDS} rounds × 3 × ${GET_ITERATIONS.toLocaleString('en-US')} calls; node ${process.version}, nproc ${availableParallelism()}, etcd ${endpoints}\n`,
  )
  let lat
  let get
  try {
    lat = await latency(endpoints)
    get = await getCost()
  } finally {
    stop()
  }

  const stat = (xs) => ({
    n: xs.length,
    p50: quantile(xs, 0.5),
    p90: quantile(xs, 0.9),
    p99: quantile(xs, 0.99),
    max: Math.max(...xs),
  })
  const raw = stat(lat.samples.raw)
  const cli = stat(lat.samples.client)
  const roundRatios = lat.perRound
    .filter((r) => r.raw !== undefined && r.client !== undefined)
    .map((r) => r.client / r.raw)
  const latTable = [
    '| watching side | updates | p50 | p90 | p99 | max | p99 ratio to raw |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...lat.sides.map(({ id, label }) => {
      const s = id === 'raw' ? raw : cli
      return `| ${label} | ${s.n.toLocaleString('en-US')} | ${fmtMs(s.p50)} | ${fmtMs(s.p90)} | ${fmtMs(s.p99)} | ${fmtMs(s.max)} | ${fmtX(s.p99 / raw.p99)} |`
    }),
  ].join('\n')

  const getStats = Object.fromEntries(
    get.variants.map(({ id }) => [
      id,
      { median: median(get.runs[id]), min: Math.min(...get.runs[id]), max: Math.max(...get.runs[id]) },
    ]),
  )
  const getTable = [
    '| call | ns/op (median) | spread (min–max) | runs | ratio to config-client |',
    '| --- | --- | --- | --- | --- |',
    ...get.variants.map(({ id, label }) => {
      const s = getStats[id]
      return `| ${label} | ${fmtNs(s.median)} | ${fmtNs(s.min)}–${fmtNs(s.max)} | ${get.runs[id].length} | ${fmtX(s.median / getStats.client.median)} |`
    }),
  ].join('\n')

  const latOk = lat.problems.length === 0 && raw.n === ROUNDS * PER_BLOCK && cli.n === ROUNDS * PER_BLOCK
  const getOk = get.problems.length === 0
  const ratio = cli.p99 / raw.p99
  const spreadNote =
    roundRatios.length > 0
      ? `; per round the p99 ratio ranges ${fmtX(Math.min(...roundRatios))}–${fmtX(Math.max(...roundRatios))} (median ${fmtX(median(roundRatios))})`
      : ''
  const targets = [
    `- publish → listener p99 ≤ 1.2× raw etcd3 p99, releases on: ${met(latOk && ratio <= 1.2)}: ${fmtX(ratio)} (${fmtMs(cli.p99)} vs ${fmtMs(raw.p99)}; p50 ${fmtMs(cli.p50)} vs ${fmtMs(raw.p50)}${spreadNote})`,
    `- \`get('a.b.c')\` faster than convict's \`get\`: ${met(getOk && getStats.client.median < getStats.convict.median)}: ${fmtNs(getStats.client.median)} vs ${fmtNs(getStats.convict.median)} (${fmtX(getStats.convict.median / getStats.client.median)} faster)`,
    `- \`get('a.b.c')\` faster than node-config's \`get\`: ${met(getOk && getStats.client.median < getStats['node-config'].median)}: ${fmtNs(getStats.client.median)} vs ${fmtNs(getStats['node-config'].median)} (${fmtX(getStats['node-config'].median / getStats.client.median)} faster)`,
  ]
  if (!latOk)
    targets.push('- the latency runs were not complete and correct (see below): the latency target counts as not met')

  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const problems = [...lat.problems, ...get.problems]
  const section = [
    '## config',
    '',
    `Command: \`${COMMAND}\` · ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${availableParallelism()} (${cpu}) · load average (1/5/15 min) ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end · etcd 3.4 on loopback`,
    '',
    `**put → listener latency.** ${ROUNDS} interleaved rounds (order alternated), each side in a fresh process per round: a writer (its own client in the same process) publishes \`bench/value = i\` as a release (\`releases().publish\`: the value, the release record and the new head in one compare-and-swap transaction, after reading the prefix, the head and the gray release; median publish call ${fmtMs(median(lat.publishMs))}) and waits until the watching side's listener has seen \`i\` before the next, ${PER_BLOCK} timed updates per round after 50 untimed warm-up updates (which also check that every value arrives, in order). Latency = listener time − time just before the publish, so both sides include the publish. The config-client side runs with default options, releases on (it also watches the release keys and reports the release it serves in its instance entry; no debounce: an update is applied right after the callback that delivered it), so each update is validated against the zod schema, diffed, frozen and delivered to a \`config.watch()\` listener.`,
    '',
    latTable,
    '',
    `**\`get('a.b.c')\` cost.** ${GET_ROUNDS} rounds (order rotated), each library in a fresh process holding the value 42 three levels deep; checked to return 42, warmed up, then ${GET_ITERATIONS.toLocaleString('en-US')} calls summed into a checksum, three times per process (15 timings per library). node-config reads its values from \`NODE_CONFIG\`; convict has its schema with defaults and \`validate()\` run.`,
    '',
    getTable,
    '',
    'Targets:',
    '',
    ...targets,
    '',
    ...(problems.length ? ['Problems seen:', '', ...problems.map((p) => `- ${p}`), ''] : []),
  ].join('\n')

  publishSection('config', section, { isDefaultRun, overrides: 'BENCH_CONFIG_*' })
}

await main()
