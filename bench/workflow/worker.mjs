// One measurement in a fresh process; prints one JSON line. Used by run.mjs.
//   node worker.mjs <variant> <json params>
// Throughput variants drive `instances` ping-pong instances concurrently, each `steps` transitions,
// every transition durable (committed) before the next event of that instance is sent:
//   wf-sqlite, wf-sqlite-nogroup, wf-pg: @backplane/workflow, engine.send per transition
//   xs-sqlite, xs-pg: XState v5 actors, actor.send then the actor's persisted snapshot written to the
//                     same database (an upsert per transition, as an XState app persists)
//   two-wf-pg, two-dbos: the two-step durable workflow on PostgreSQL, ours and DBOS Transact (two-step.mjs)
// Recovery variants: rec-setup-* leaves 10,000 instances in flight (timer armed, activity call
// pending) and dies; rec-* starts an engine over them and times the resume.
import { performance } from 'node:perf_hooks'
import { createEngine, defineMachine } from '@backplane/workflow'
import { assign, createActor, createMachine } from 'xstate'
import { z } from 'zod'
import { serverCpuMs } from './server-cpu.mjs'
import { twoStepDbos, twoStepOurs } from './two-step.mjs'

const [variant, paramsText] = process.argv.slice(2)
const params = JSON.parse(paramsText ?? '{}')

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

/**
 * Marks the start of the measured window: wall clock, this process's CPU time and, on PostgreSQL,
 * the server's (read here rather than around the whole process, so set-up and checks are left out).
 */
const mark = () => ({ at: performance.now(), cpu: process.cpuUsage(), server: serverCpuMs(params.postmaster) })

function summary(latencies, started, transitions) {
  const seconds = (performance.now() - started.at) / 1000
  const cpu = process.cpuUsage(started.cpu)
  const server = serverCpuMs(params.postmaster)
  const sorted = Float64Array.from(latencies).sort()
  return {
    transitions,
    seconds,
    rate: transitions / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpuUsPerTransition: (cpu.user + cpu.system) / transitions,
    serverCpuUsPerTransition:
      server === undefined || started.server === undefined
        ? undefined
        : ((server - started.server) * 1000) / transitions,
  }
}

const pingPong = defineMachine({
  id: 'pingpong',
  context: z.object({ n: z.number().int() }),
  initial: 'ping',
  states: {
    ping: { on: { HIT: { target: 'pong', assign: (c) => ({ n: c.n + 1 }) } } },
    pong: { on: { HIT: { target: 'ping', assign: (c) => ({ n: c.n + 1 }) } } },
  },
})

const xsMachine = createMachine({
  id: 'pingpong',
  context: { n: 0 },
  initial: 'ping',
  states: {
    ping: { on: { HIT: { target: 'pong', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
    pong: { on: { HIT: { target: 'ping', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
  },
})

async function sqliteStoreOf(options) {
  const { sqliteStore } = await import('@backplane/workflow/sqlite')
  return sqliteStore(options)
}

async function pgStoreOf() {
  const { postgresStore } = await import('@backplane/workflow/postgres')
  return postgresStore({ connectionString: params.url, schema: params.schema, max: 10 })
}

async function workflowThroughput(store, check) {
  const engine = await createEngine({ store, machines: [pingPong] })
  const ids = Array.from({ length: params.instances }, (_, i) => `i-${i}`)
  await Promise.all(ids.map((id) => engine.start(pingPong, { id, input: { n: 0 } })))
  const latencies = []
  const started = mark()
  await Promise.all(
    ids.map(async (id) => {
      for (let s = 0; s < params.steps; s++) {
        const t = performance.now()
        await engine.send(id, { type: 'HIT' })
        latencies.push(performance.now() - t)
      }
    }),
  )
  const result = summary(latencies, started, ids.length * params.steps)
  await engine.close()
  result.problems = await check(ids)
  return result
}

async function checkSqliteWorkflow(ids) {
  const Database = (await import('better-sqlite3')).default
  const db = new Database(params.file, { readonly: true })
  const problems = []
  const history = db.prepare('SELECT instance_id AS id, count(*) AS n FROM wf_history GROUP BY instance_id').all()
  const rows = db.prepare('SELECT id, revision, data FROM wf_instances').all()
  db.close()
  return checkWorkflowRows(ids, history, rows, problems)
}

async function checkPgWorkflow(ids) {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: params.url })
  await client.connect()
  const history = (
    await client.query(
      `SELECT instance_id AS id, count(*)::int AS n FROM "${params.schema}".workflow_history GROUP BY instance_id`,
    )
  ).rows
  const rows = (await client.query(`SELECT id, revision, data FROM "${params.schema}".workflow_instances`)).rows
  await client.end()
  return checkWorkflowRows(ids, history, rows, [])
}

function checkWorkflowRows(ids, history, rows, problems) {
  const counts = new Map(history.map((r) => [r.id, Number(r.n)]))
  const data = new Map(
    rows.map((r) => [
      r.id,
      { revision: Number(r.revision), ...(typeof r.data === 'string' ? JSON.parse(r.data) : r.data) },
    ]),
  )
  let bad = 0
  for (const id of ids) {
    const record = data.get(id)
    const ok =
      counts.get(id) === params.steps + 1 &&
      record?.context?.n === params.steps &&
      record?.revision === params.steps + 1
    if (!ok) bad++
  }
  if (bad > 0)
    problems.push(
      `${bad} of ${ids.length} instances do not have ${params.steps} transitions committed (history rows, context.n, revision)`,
    )
  return problems
}

async function xstateThroughput(persist, check, close) {
  const ids = Array.from({ length: params.instances }, (_, i) => `i-${i}`)
  const actors = new Map()
  for (const id of ids) {
    const actor = createActor(xsMachine).start()
    actors.set(id, actor)
    await persist(id, actor.getPersistedSnapshot())
  }
  const latencies = []
  const started = mark()
  await Promise.all(
    ids.map(async (id) => {
      const actor = actors.get(id)
      for (let s = 0; s < params.steps; s++) {
        const t = performance.now()
        actor.send({ type: 'HIT' })
        await persist(id, actor.getPersistedSnapshot())
        latencies.push(performance.now() - t)
      }
    }),
  )
  const result = summary(latencies, started, ids.length * params.steps)
  await close()
  result.problems = await check(ids)
  return result
}

function checkXstateSnapshots(ids, rows) {
  const snapshots = new Map(
    rows.map((r) => [r.id, typeof r.snapshot === 'string' ? JSON.parse(r.snapshot) : r.snapshot]),
  )
  let bad = 0
  for (const id of ids) {
    const snapshot = snapshots.get(id)
    const expectedState = params.steps % 2 === 0 ? 'ping' : 'pong'
    if (snapshot?.context?.n !== params.steps || snapshot?.value !== expectedState) bad++
  }
  return bad > 0 ? [`${bad} of ${ids.length} persisted snapshots are not at n = ${params.steps}`] : []
}

async function xsSqlite() {
  const Database = (await import('better-sqlite3')).default
  const db = new Database(params.file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, snapshot TEXT NOT NULL)')
  const upsert = db.prepare(
    'INSERT INTO snapshots (id, snapshot) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot',
  )
  return xstateThroughput(
    async (id, snapshot) => {
      upsert.run(id, JSON.stringify(snapshot))
    },
    async (ids) => {
      const check = new Database(params.file, { readonly: true })
      const rows = check.prepare('SELECT id, snapshot FROM snapshots').all()
      check.close()
      return checkXstateSnapshots(ids, rows)
    },
    async () => db.close(),
  )
}

async function xsPg() {
  const pg = (await import('pg')).default
  const pool = new pg.Pool({ connectionString: params.url, max: 10 })
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${params.schema}"`)
  await pool.query(
    `CREATE TABLE IF NOT EXISTS "${params.schema}".snapshots (id text PRIMARY KEY, snapshot jsonb NOT NULL)`,
  )
  const sql = `INSERT INTO "${params.schema}".snapshots (id, snapshot) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot`
  return xstateThroughput(
    async (id, snapshot) => {
      await pool.query(sql, [id, JSON.stringify(snapshot)])
    },
    async (ids) => {
      const client = new pg.Client({ connectionString: params.url })
      await client.connect()
      const rows = (await client.query(`SELECT id, snapshot FROM "${params.schema}".snapshots`)).rows
      await client.end()
      return checkXstateSnapshots(ids, rows)
    },
    () => pool.end(),
  )
}

// ------------------------------------------------------------------ recovery

const waiting = defineMachine({
  id: 'waiting',
  context: z.object({ orderId: z.string() }),
  initial: 'pending',
  states: {
    pending: { invoke: { activity: 'charge', onDone: 'charged' }, after: { '1h': 'expired' } },
    charged: { type: 'final' },
    expired: { type: 'final' },
  },
})

async function recoverySetup(store) {
  // The activity never finishes: the process "crashes" with every call pending and every timer armed.
  const engine = await createEngine({
    store,
    machines: [waiting],
    owner: 'bench-recovery',
    activities: { charge: () => new Promise(() => undefined) },
  })
  for (let i = 0; i < params.instances; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, params.instances - i) }, (_, j) =>
        engine.start(waiting, { id: `r-${String(i + j).padStart(6, '0')}`, input: { orderId: `o-${i + j}` } }),
      ),
    )
  }
  const inFlight = (await engine.list({ status: 'running', limit: params.instances + 1 })).instances.length
  return { inFlight, exit: true }
}

async function recovery(store) {
  const t0 = performance.now()
  const engine = await createEngine({
    store,
    machines: [waiting],
    owner: 'bench-recovery',
    concurrency: 256,
    activities: { charge: async (_input, ctx) => ({ key: ctx.idempotencyKey }) },
  })
  const resumedMs = performance.now() - t0
  const resumed = engine.recovered.instances
  const stats = engine.stats()
  // Until no instance is left waiting for its activity's result (polled every 10 ms).
  const deadline = performance.now() + 60_000
  while ((await engine.list({ state: 'pending', limit: 1 })).instances.length > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10))
  }
  const allMs = performance.now() - t0
  const charged = (await engine.list({ state: 'charged', limit: params.instances + 1 })).instances.length
  await engine.close()
  const problems = []
  if (resumed !== params.instances) problems.push(`resumed ${resumed} instances, expected ${params.instances}`)
  if (charged !== params.instances)
    problems.push(`${charged} of ${params.instances} instances committed their re-run activity`)
  if (stats.scheduled < params.instances) problems.push(`only ${stats.scheduled} timers armed at resume`)
  return { resumed, resumedMs, allMs, charged, armed: stats.scheduled, problems }
}

const variants = {
  'wf-sqlite': async () => workflowThroughput(await sqliteStoreOf({ path: params.file }), checkSqliteWorkflow),
  'wf-sqlite-nogroup': async () =>
    workflowThroughput(await sqliteStoreOf({ path: params.file, groupCommit: false }), checkSqliteWorkflow),
  'wf-pg': async () => workflowThroughput(await pgStoreOf(), checkPgWorkflow),
  'xs-sqlite': xsSqlite,
  'xs-pg': xsPg,
  'two-wf-pg': () => twoStepOurs(params),
  'two-dbos': () => twoStepDbos(params),
  'rec-setup-sqlite': async () => recoverySetup(await sqliteStoreOf({ path: params.file })),
  'rec-setup-pg': async () => recoverySetup(await pgStoreOf()),
  'rec-sqlite': async () => recovery(await sqliteStoreOf({ path: params.file })),
  'rec-pg': async () => recovery(await pgStoreOf()),
}

const run = variants[variant]
if (!run) {
  process.stderr.write(`unknown variant ${variant}\n`)
  process.exit(2)
}
const result = await run()
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
