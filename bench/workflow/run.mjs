// Durable transitions/s and commit latency of @backplane/workflow on SQLite and PostgreSQL, against
// XState v5 actors that persist their snapshot to the same database after every transition, plus
// the time to resume 10,000 in-flight instances after a crash. Every measurement runs in a fresh
// process (worker.mjs); rounds are interleaved, the order rotated each round; every run's database
// is checked (each transition committed once) before its figures are used. Writes the
// `## workflow` section of BENCHMARKS.md. Run it with `npm run bench -- workflow`.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt as buildIfNeeded } from '../lib/build.mjs'
import { median } from '../lib/stats.mjs'
import { runWorker } from '../lib/worker.mjs'

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
  if (!existsSync(join(root, 'node_modules', 'xstate'))) {
    process.stderr.write('xstate is not installed: run npm install at the repo root\n')
    process.exit(1)
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

function runVariant(variant, params) {
  return runWorker(join(here, 'worker.mjs'), [variant, JSON.stringify(params)], {
    cwd: join(root, 'packages', 'workflow'),
    timeoutMs: WORKER_TIMEOUT_MS,
  })
}

/** The PostgreSQL server's process id, read from its data directory (undefined if that is not readable here). */
async function postmasterPid(url) {
  try {
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const dir = (await client.query('SHOW data_directory')).rows[0].data_directory
    await client.end()
    return Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0])
  } catch {
    return undefined
  }
}

const CLOCK_TICK_MS = 10 // USER_HZ is 100 on Linux

/**
 * CPU time (ms) used so far by the PostgreSQL server: the postmaster, its live children (backends,
 * WAL writer, checkpointer) and the children it has reaped (a finished run's backends). Undefined
 * without /proc.
 */
function serverCpuMs(pid) {
  if (pid === undefined) return undefined
  try {
    const fields = (path) => readFileSync(path, 'utf8').split(') ')[1].split(' ')
    const own = fields(`/proc/${pid}/stat`)
    // After "pid (comm) ": [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14])
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const f = fields(`/proc/${entry}/stat`)
        if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12])
      } catch {}
    }
    return ticks * CLOCK_TICK_MS
  } catch {
    return undefined
  }
}

async function dropSchema(url, schema) {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await client.end()
}

async function main() {
  ensureBuilt()
  const startedAt = new Date()
  const load = loadavg()
  const pg = ensurePostgres()
  const dir = mkdtempSync(join(tmpdir(), 'bench-workflow-'))
  process.stdout.write(
    `workflow bench: ${THROUGHPUT.length} throughput variants + ${RECOVERY.length} recovery variants × ${ROUNDS} rounds, node ${process.version}, nproc ${availableParallelism()}, load ${load.map((l) => l.toFixed(2)).join(' ')}\n`,
  )
  const postmaster = await postmasterPid(pg.url)
  const runs = Object.fromEntries([...THROUGHPUT, ...RECOVERY].map((v) => [v.id, []]))
  const problems = Object.fromEntries([...THROUGHPUT, ...RECOVERY].map((v) => [v.id, []]))
  let serial = 0
  const paramsFor = (store) => {
    serial++
    return store === 'sqlite'
      ? { file: join(dir, `run-${serial}.db`) }
      : { url: pg.url, schema: `bench_wf_${process.pid}_${serial}` }
  }
  const cleanup = async (params) => {
    if (params.schema) await dropSchema(pg.url, params.schema).catch(() => undefined)
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
        const serverBefore = variant.store === 'pg' ? serverCpuMs(postmaster) : undefined
        const { result, code, signal, stderr } = await runVariant(variant.id, params)
        if (result && serverBefore !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, 200)) // the run's backends exit and are reaped
          const after = serverCpuMs(postmaster)
          // Includes the engine's start-up commits and the check's queries: an upper bound.
          if (after !== undefined)
            result.serverCpuUsPerTransition = ((after - serverBefore) * 1000) / result.transitions
        }
        await cleanup(params)
        keep(variant.id, round, { result, code, signal, stderr })
        process.stdout.write(
          `  round ${round + 1} ${variant.id}: ${result ? `${fmtInt(result.rate)} transitions/s, p50 ${fmtMs(result.p50)} ms, p99 ${fmtMs(result.p99)} ms${result.problems.length ? ` PROBLEMS: ${result.problems.join('; ')}` : ''}` : `failed: ${stderr.split('\n')[0]}`}\n`,
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
  const perRound = (a, b) =>
    runs[a].flatMap((ra) => {
      const rb = runs[b].find((r) => r.round === ra.round)
      return rb ? [ra.rate / rb.rate] : []
    })
  const ratioText = (a, b) => {
    const ratios = perRound(a, b)
    return ratios.length
      ? `per round ${Math.min(...ratios).toFixed(1)}×–${Math.max(...ratios).toFixed(1)}×`
      : 'no paired rounds'
  }
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
    ...RECOVERY.map((v) => {
      const ms = recovery(v.id)
      return `- recovery of 10,000 in-flight instances ≤ 2 s, ${v.label}: ${Number.isNaN(ms) ? '**not measured**' : met(ms <= 2000)}: ${fmtInt(ms)} ms to resume (every timer re-armed from its deadline, every pending activity call queued); ${fmtInt(median(runs[v.id].map((r) => r.allMs)))} ms until all 10,000 re-run activities had committed their results`
    }),
  ]
  /** What the CPU figures say about the PostgreSQL ratio: both sides share this machine's cores. */
  function pgCpuNote() {
    const ours = cpuOf('wf-pg', 'cpuUsPerTransition') + cpuOf('wf-pg', 'serverCpuUsPerTransition')
    const theirs = cpuOf('xs-pg', 'cpuUsPerTransition') + cpuOf('xs-pg', 'serverCpuUsPerTransition')
    if (Number.isNaN(ours) || Number.isNaN(theirs)) return []
    const cores = availableParallelism()
    return [
      `- PostgreSQL, CPU per durable transition (benchmark process + server, server figures include each run's set-up and check): @backplane/workflow ${ours.toFixed(1)} µs, the XState baseline ${theirs.toFixed(1)} µs (${(theirs / ours).toFixed(1)}× ours). With every core of this ${cores}-core machine busy, ours could reach at most about ${fmtInt((cores * 1e6) / ours)}/s; 10× the baseline's median would be ${fmtInt(10 * rate('xs-pg'))}/s.`,
    ]
  }
  const notes = [
    `- group commit on SQLite: (a) ${(rate('wf-sqlite') / rate('wf-sqlite-nogroup')).toFixed(1)}× (a0) (${ratioText('wf-sqlite', 'wf-sqlite-nogroup')}).`,
    ...pgCpuNote(),
    ...Object.entries(problems).flatMap(([id, list]) => list.map((p) => `- ${id}: ${p}`)),
  ]
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const section = [
    '## workflow',
    '',
    `Command: \`${COMMAND}\` · ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${availableParallelism()} (${cpu}) · load average (1/5/15 min) ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end · PostgreSQL on the same machine`,
    '',
    `Each cell: ${ROUNDS} interleaved rounds (order rotated each round), each run a fresh process and a fresh database (SQLite file in WAL mode with synchronous=FULL, or a new PostgreSQL schema). ${INSTANCES} ping-pong instances run concurrently, each sending its next event only once the previous transition is durable, so ${INSTANCES} transitions are in flight at any time. Runs are sized to last about 1.5 to 2 s each (transitions per run in the table), so start-up and JIT warm-up are a small share on both sides. @backplane/workflow: \`engine.send\` resolves after the transition (new state, context checked by zod, history row) is committed. XState: \`actor.send\`, then \`actor.getPersistedSnapshot()\` upserted into a table of the same database (SQLite: better-sqlite3, one statement per transition; PostgreSQL: pg pool of 10). Commit latency = time from send to durable, per transition. After each run the database is read back: every instance must have exactly its transitions (history rows, counter in the context, revision; XState: the last snapshot), else the run is discarded. Recovery: a process starts 10,000 instances whose state arms a 1 h timer and invokes an activity that never returns, then dies; a new process (same owner id) creates the engine: resume time = \`createEngine\` until it resolves with every instance claimed, its timer armed and its activity queued.`,
    '',
    ...rows,
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
