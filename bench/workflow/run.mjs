// Durable transitions/s and commit latency of @backplane/workflow on SQLite and PostgreSQL, against
// XState v5 actors that persist their snapshot to the same database after every transition; a
// two-step durable workflow against DBOS Transact on the same PostgreSQL (two-step.mjs,
// two-step-report.mjs); and the time to resume 10,000 in-flight instances after a crash. Every
// measurement runs in a fresh process (worker.mjs); rounds are interleaved, the order rotated each
// round; every run's database is checked (each transition committed once) before its figures are
// used. Writes the `## workflow` section of BENCHMARKS.md. Run it with `npm run bench -- workflow`.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt as buildIfNeeded } from '../lib/build.mjs'
import { median } from '../lib/stats.mjs'
import { runWorker } from '../lib/worker.mjs'
import { postmasterPid } from './server-cpu.mjs'
import { TWO_STEP, TWO_STEP_LANES, TWO_STEP_WARMUP, TWO_STEP_WORKFLOWS, twoStepReport } from './two-step-report.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- workflow'
const ROUNDS = Number(process.env.BENCH_WORKFLOW_ROUNDS ?? 3)
const isDefaultRun = process.env.BENCH_WORKFLOW_ROUNDS === undefined
const INSTANCES = 256
const RECOVERY_INSTANCES = 10_000
const WORKER_TIMEOUT_MS = 180_000

const THROUGHPUT = [
  {
    id: 'wf-sqlite',
    store: 'sqlite',
    steps: 500,
    label: '(a) @backplane/workflow, SQLite (WAL, synchronous=FULL, group commit)',
  },
  { id: 'wf-sqlite-nogroup', store: 'sqlite', steps: 40, label: '(a0) @backplane/workflow, SQLite, group commit off' },
  {
    id: 'xs-sqlite',
    store: 'sqlite',
    steps: 40,
    label: '(b) XState v5 actor + snapshot upsert per transition, same SQLite settings',
  },
  { id: 'wf-pg', store: 'pg', steps: 300, label: '(c) @backplane/workflow, PostgreSQL 15 (group commit)' },
  {
    id: 'xs-pg',
    store: 'pg',
    steps: 30,
    label: '(d) XState v5 actor + snapshot upsert per transition, same PostgreSQL (pool of 10)',
  },
]
const RECOVERY = [
  { id: 'rec-sqlite', store: 'sqlite', label: 'SQLite' },
  { id: 'rec-pg', store: 'pg', label: 'PostgreSQL' },
]

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => (n >= 100 ? fmtInt(n) : n.toFixed(1))

function ensureBuilt() {
  buildIfNeeded('workflow', ['index.js'])
  for (const name of ['xstate', '@dbos-inc/dbos-sdk']) {
    if (!existsSync(join(root, 'node_modules', name))) {
      process.stderr.write(`${name} is not installed: run npm install at the repo root\n`)
      process.exit(1)
    }
  }
}

/** DATABASE_URL, or PostgreSQL started through scripts/services.sh (and stopped again at the end). */
function ensurePostgres() {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: () => undefined }
  process.stdout.write('DATABASE_URL is not set: starting PostgreSQL with scripts/services.sh…\n')
  const services = join(root, 'scripts', 'services.sh')
  const wasRunning = spawnSync('bash', [services, 'status', 'postgres'], { cwd: root }).status === 0
  const up = spawnSync('bash', [services, 'up', 'postgres'], { cwd: root, stdio: 'inherit' })
  if (up.status !== 0) {
    process.stderr.write('could not start PostgreSQL\n')
    process.exit(1)
  }
  const env = spawnSync('bash', [services, 'env'], { cwd: root, encoding: 'utf8' }).stdout
  const url = /^DATABASE_URL=(.*)$/m.exec(env)?.[1]
  if (!url) {
    process.stderr.write('scripts/services.sh env printed no DATABASE_URL\n')
    process.exit(1)
  }
  return {
    url,
    stop: () => (wasRunning ? undefined : spawnSync('bash', [services, 'down', 'postgres'], { cwd: root })),
  }
}

/** The 1-minute load average after each run: the machine's load during the bench, this bench's own included. */
const loadSamples = []

async function runVariant(variant, params) {
  const outcome = await runWorker(join(here, 'worker.mjs'), [variant, JSON.stringify(params)], {
    cwd: join(root, 'packages', 'workflow'),
    timeoutMs: WORKER_TIMEOUT_MS,
  })
  loadSamples.push(loadavg()[0])
  return outcome
}

async function dropSchema(url, schema) {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await client.end()
}

/** `url` with its database name replaced: DBOS gets a system database of its own on the same server. */
function withDatabase(url, database) {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

async function dropDatabase(url, database) {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)
  await client.end()
}

async function main() {
  ensureBuilt()
  const startedAt = new Date()
  const load = loadavg()
  const pg = ensurePostgres()
  const dir = mkdtempSync(join(tmpdir(), 'bench-workflow-'))
  process.stdout.write(
    `workflow bench: ${THROUGHPUT.length} throughput variants + ${TWO_STEP.length} two-step workflow variants + ${RECOVERY.length} recovery variants × ${ROUNDS} rounds, node ${process.version}, nproc ${availableParallelism()}, load ${load.map((l) => l.toFixed(2)).join(' ')}\n`,
  )
  const postmaster = await postmasterPid(pg.url)
  const all = [...THROUGHPUT, ...TWO_STEP, ...RECOVERY]
  const runs = Object.fromEntries(all.map((v) => [v.id, []]))
  const problems = Object.fromEntries(all.map((v) => [v.id, []]))
  let serial = 0
  const paramsFor = (store) => {
    serial++
    if (store === 'sqlite') return { file: join(dir, `run-${serial}.db`) }
    if (store === 'pg') return { url: pg.url, schema: `bench_wf_${process.pid}_${serial}`, postmaster }
    // DBOS creates its system database at launch; a new one per run, as a new schema is for ours.
    const database = `bench_dbos_${process.pid}_${serial}`
    return { dbosUrl: withDatabase(pg.url, database), database, postmaster }
  }
  const cleanup = async (params) => {
    if (params.schema) await dropSchema(pg.url, params.schema).catch(() => undefined)
    else if (params.database) await dropDatabase(pg.url, params.database).catch(() => undefined)
    else for (const suffix of ['', '-wal', '-shm']) rmSync(`${params.file}${suffix}`, { force: true })
  }

  /** Keeps a run's figures, or why they cannot be used. */
  const keep = (id, round, { result, code, signal, stderr }) => {
    if (!result)
      problems[id].push(`round ${round + 1}: worker failed (${signal ?? `exit ${code}`}): ${stderr.split('\n')[0]}`)
    else if (result.problems.length > 0) problems[id].push(...result.problems.map((p) => `round ${round + 1}: ${p}`))
    else runs[id].push({ ...result, round })
  }

  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = [...THROUGHPUT.slice(round % THROUGHPUT.length), ...THROUGHPUT.slice(0, round % THROUGHPUT.length)]
      for (const variant of order) {
        const params = { ...paramsFor(variant.store), instances: INSTANCES, steps: variant.steps }
        const { result, code, signal, stderr } = await runVariant(variant.id, params)
        await cleanup(params)
        keep(variant.id, round, { result, code, signal, stderr })
        process.stdout.write(
          `  round ${round + 1} ${variant.id}: ${result ? `${fmtInt(result.rate)} transitions/s, p50 ${fmtMs(result.p50)} ms, p99 ${fmtMs(result.p99)} ms${result.problems.length ? ` PROBLEMS: ${result.problems.join('; ')}` : ''}` : `failed: ${stderr.split('\n')[0]}`}\n`,
        )
      }
      // Ours and DBOS back to back, the one that goes first alternating by round.
      for (const variant of round % 2 === 0 ? TWO_STEP : [...TWO_STEP].reverse()) {
        const params = {
          ...paramsFor(variant.store),
          lanes: TWO_STEP_LANES,
          warmup: TWO_STEP_WARMUP,
          workflows: TWO_STEP_WORKFLOWS,
        }
        const { result, code, signal, stderr } = await runVariant(variant.id, params)
        await cleanup(params)
        keep(variant.id, round, { result, code, signal, stderr })
        process.stdout.write(
          `  round ${round + 1} ${variant.id}: ${result ? `${fmtInt(result.rate)} workflows/s, step p50 ${fmtMs(result.p50)} ms, p99 ${fmtMs(result.p99)} ms, CPU µs per step ${result.cpuUsPerStep.toFixed(0)} + server ${result.serverCpuUsPerStep?.toFixed(0) ?? 'n/a'}${result.problems.length ? ` PROBLEMS: ${result.problems.join('; ')}` : ''}` : `failed: ${stderr.split('\n')[0]}`}\n`,
        )
      }
      for (const variant of RECOVERY) {
        const params = { ...paramsFor(variant.store), instances: RECOVERY_INSTANCES }
        const setup = await runVariant(`rec-setup-${variant.store}`, params)
        if (!setup.result || setup.result.inFlight !== RECOVERY_INSTANCES) {
          problems[variant.id].push(
            `round ${round + 1}: setup left ${setup.result?.inFlight ?? 'no'} instances in flight: ${setup.stderr.split('\n')[0]}`,
          )
          await cleanup(params)
          continue
        }
        const { result, code, signal, stderr } = await runVariant(variant.id, params)
        await cleanup(params)
        keep(variant.id, round, { result, code, signal, stderr })
        process.stdout.write(
          `  round ${round + 1} ${variant.id}: ${result ? `resumed ${fmtInt(result.resumed)} in ${fmtInt(result.resumedMs)} ms (${fmtInt(result.armed)} timers armed), all re-run activities committed after ${fmtInt(result.allMs)} ms` : `failed: ${stderr.split('\n')[0]}`}\n`,
        )
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    pg.stop()
  }

  // ------------------------------------------------------------------ report
  const rate = (id) => median(runs[id].map((r) => r.rate))
  const spread = (id) => {
    const rates = runs[id].map((r) => r.rate)
    return rates.length ? `${fmtInt(Math.min(...rates))}–${fmtInt(Math.max(...rates))}` : '-'
  }
  /** The per-round range of f(a's run) / f(b's run), over the rounds both kept. */
  const ratioTextBy = (a, b, f) => {
    const ratios = runs[a]
      .flatMap((ra) => {
        const rb = runs[b].find((r) => r.round === ra.round)
        return rb ? [f(ra) / f(rb)] : []
      })
      .filter((n) => !Number.isNaN(n))
    return ratios.length
      ? `per round ${Math.min(...ratios).toFixed(1)}×–${Math.max(...ratios).toFixed(1)}×`
      : 'no paired rounds'
  }
  const ratioText = (a, b) => ratioTextBy(a, b, (r) => r.rate)
  const cpuPerTransitionOf = (r) => r.cpuUsPerTransition + r.serverCpuUsPerTransition
  const cpuOf = (id, field) => {
    const values = runs[id].map((r) => r[field]).filter((x) => typeof x === 'number')
    return values.length ? median(values) : Number.NaN
  }
  const fmtCpu = (us) => (Number.isNaN(us) ? 'n/a' : us.toFixed(1))
  const rows = [
    '| variant | transitions per run | transitions/s (median) | spread (min–max) | commit latency p50 (median) | p99 (median) | CPU µs per transition: process / PostgreSQL server (median) | checked |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...THROUGHPUT.map((v) => {
      const ok = runs[v.id]
      const server = v.store === 'pg' ? ` / ${fmtCpu(cpuOf(v.id, 'serverCpuUsPerTransition'))}` : ' / (in process)'
      return `| ${v.label} | ${fmtInt(INSTANCES * v.steps)} | ${ok.length ? fmtInt(rate(v.id)) : '-'} | ${spread(v.id)} | ${ok.length ? `${fmtMs(median(ok.map((r) => r.p50)))} ms` : '-'} | ${ok.length ? `${fmtMs(median(ok.map((r) => r.p99)))} ms` : '-'} | ${fmtCpu(cpuOf(v.id, 'cpuUsPerTransition'))}${server} | ${ok.length}/${ROUNDS} runs: every transition committed once |`
    }),
  ]
  const recoveryRows = [
    '| store | instances in flight | resumed (median) | resume time (median) | spread | all re-run activities committed (median) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...RECOVERY.map((v) => {
      const ok = runs[v.id]
      const times = ok.map((r) => r.resumedMs)
      return `| ${v.label} | ${fmtInt(RECOVERY_INSTANCES)} | ${ok.length ? fmtInt(median(ok.map((r) => r.resumed))) : '-'} | ${ok.length ? `${fmtInt(median(times))} ms` : '-'} | ${ok.length ? `${fmtInt(Math.min(...times))}–${fmtInt(Math.max(...times))} ms` : '-'} | ${ok.length ? `${fmtInt(median(ok.map((r) => r.allMs)))} ms` : '-'} |`
    }),
  ]
  const met = (ok) => (ok ? '**met**' : '**not met**')
  const target = (label, value, goal, detail) =>
    `- ${label}: ${Number.isNaN(value) ? '**not measured**' : met(value >= goal)}: ${detail}`
  const sqliteRatio = rate('wf-sqlite') / rate('xs-sqlite')
  const pgRatio = rate('wf-pg') / rate('xs-pg')
  const recovery = (id) => median(runs[id].map((r) => r.resumedMs))
  // The median of each run's total (process + server), so the figure is one run's, not two halves' of two.
  const cpuPerTransition = (id) => {
    const totals = runs[id].map(cpuPerTransitionOf).filter((x) => !Number.isNaN(x))
    return totals.length ? median(totals) : Number.NaN
  }
  const pgCpuRatio = cpuPerTransition('xs-pg') / cpuPerTransition('wf-pg')
  const twoStep = twoStepReport(runs, problems, ROUNDS)
  const targets = [
    target(
      'SQLite ≥ 20,000 durable transitions/s',
      rate('wf-sqlite'),
      20_000,
      `${fmtInt(rate('wf-sqlite'))}/s (spread ${spread('wf-sqlite')})`,
    ),
    target(
      'PostgreSQL ≥ 5,000 durable transitions/s',
      rate('wf-pg'),
      5_000,
      `${fmtInt(rate('wf-pg'))}/s (spread ${spread('wf-pg')})`,
    ),
    target(
      '≥ 10× the XState baseline on SQLite',
      sqliteRatio,
      10,
      `${sqliteRatio.toFixed(1)}× (${fmtInt(rate('wf-sqlite'))} vs ${fmtInt(rate('xs-sqlite'))}/s; ${ratioText('wf-sqlite', 'xs-sqlite')})`,
    ),
    target(
      '≥ 10× the XState baseline on PostgreSQL',
      pgRatio,
      10,
      `${pgRatio.toFixed(1)}× (${fmtInt(rate('wf-pg'))} vs ${fmtInt(rate('xs-pg'))}/s; ${ratioText('wf-pg', 'xs-pg')})`,
    ),
    // Throughput on PostgreSQL depends on how many cores the server shares with the process; CPU per
    // transition does not.
    target(
      '≥ 10× the XState baseline on PostgreSQL, as CPU per durable transition (process + server)',
      pgCpuRatio,
      10,
      `the baseline uses ${pgCpuRatio.toFixed(1)}× ours (${cpuPerTransition('xs-pg').toFixed(1)} µs vs ${cpuPerTransition('wf-pg').toFixed(1)} µs per transition; ${ratioTextBy('xs-pg', 'wf-pg', cpuPerTransitionOf)})`,
    ),
    ...twoStep.targets,
    ...RECOVERY.map((v) => {
      const ms = recovery(v.id)
      return `- recovery of 10,000 in-flight instances ≤ 2 s, ${v.label}: ${Number.isNaN(ms) ? '**not measured**' : met(ms <= 2000)}: ${fmtInt(ms)} ms to resume (every timer re-armed from its deadline, every pending activity call queued); ${fmtInt(median(runs[v.id].map((r) => r.allMs)))} ms until all 10,000 re-run activities had committed their results`
    }),
  ]
  /** What the CPU figures say about the PostgreSQL ratio: both sides share this machine's cores. */
  function pgCpuNote() {
    const ours = cpuPerTransition('wf-pg')
    if (Number.isNaN(ours)) return []
    const cores = availableParallelism()
    return [
      `- PostgreSQL: at ${ours.toFixed(1)} µs of CPU per durable transition (process + server), with every core of this ${cores}-core machine busy ours could reach at most about ${fmtInt((cores * 1e6) / ours)}/s; 10× the baseline's median would be ${fmtInt(10 * rate('xs-pg'))}/s.`,
    ]
  }
  const notes = [
    `- group commit on SQLite: (a) ${(rate('wf-sqlite') / rate('wf-sqlite-nogroup')).toFixed(1)}× (a0) (${ratioText('wf-sqlite', 'wf-sqlite-nogroup')}).`,
    ...pgCpuNote(),
    ...twoStep.notes,
    ...Object.entries(problems)
      .filter(([id]) => !TWO_STEP.some((v) => v.id === id))
      .flatMap(([id, list]) => list.map((p) => `- ${id}: ${p}`)),
  ]
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const section = [
    '## workflow',
    '',
    `Command: \`${COMMAND}\` · ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${availableParallelism()} (${cpu}) · load average (1/5/15 min) ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        ' ',
      )} at end, 1-min load ${Math.min(...loadSamples).toFixed(2)}–${Math.max(...loadSamples).toFixed(2)} after the runs in between (this bench's own included) · PostgreSQL on the same machine`,
    '',
    `Each cell: ${ROUNDS} interleaved rounds (order rotated each round), each run a fresh process and a fresh database (SQLite file in WAL mode with synchronous=FULL, or a new PostgreSQL schema). ${INSTANCES} ping-pong instances run concurrently, each sending its next event only once the previous transition is durable, so ${INSTANCES} transitions are in flight at any time. Runs are sized to last about 1.5 to 2 s each (transitions per run in the table), so start-up and JIT warm-up are a small share on both sides. @backplane/workflow: \`engine.send\` resolves after the transition (new state, context checked by zod, history row) is committed. XState: \`actor.send\`, then \`actor.getPersistedSnapshot()\` upserted into a table of the same database (SQLite: better-sqlite3, one statement per transition; PostgreSQL: pg pool of 10). Commit latency = time from send to durable, per transition. CPU per transition: the benchmark process (\`process.cpuUsage\`) and the PostgreSQL server (utime + stime of the postmaster and all its children from /proc), both read in the worker at the edges of the measured window. After each run the database is read back: every instance must have exactly its transitions (history rows, counter in the context, revision; XState: the last snapshot), else the run is discarded. Recovery: a process starts 10,000 instances whose state arms a 1 h timer and invokes an activity that never returns, then dies; a new process (same owner id) creates the engine: resume time = \`createEngine\` until it resolves with every instance claimed, its timer armed and its activity queued.`,
    '',
    ...rows,
    '',
    twoStep.description,
    '',
    ...twoStep.rows,
    '',
    ...recoveryRows,
    '',
    'Targets:',
    '',
    ...targets,
    '',
    'Notes:',
    '',
    ...notes,
    '',
  ].join('\n')

  publishSection('workflow', section, { isDefaultRun, overrides: 'BENCH_WORKFLOW_ROUNDS' })
}

await main()
