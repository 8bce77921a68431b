// The two-step durable workflow, run the same way by @backplane/workflow and by DBOS Transact on one
// PostgreSQL server. Used by worker.mjs (variants two-wf-pg and two-dbos); prints nothing itself.
//
// The workflow: input { orderId, amount }; step `reserve` returns { reservation }, step `charge`
// returns { charge, amount }; the workflow's result is { reservation, charge }. The steps do no I/O,
// so what is measured is the engine: making the start, each step's result and the end durable.
// `lanes` workflows run at once: each lane starts its next workflow when its previous one is done.
// A warm-up of `warmup` workflows (one per lane) runs before the measured window on both sides.
//
// Per-step latency, the same definition on both sides: from the moment the step could start (the
// commit before it is durable: the workflow's start, or the previous step's result) to the moment
// its own result is durable.
//   ours: `transition` events, emitted right after each commit: start → reserving, reserving →
//         charging (reserve's result and charge's task in one commit), charging → done.
//   DBOS: performance.now() around each `DBOS.runStep` inside the workflow function, which runs
//         once the workflow's status row is committed; runStep returns once its output row is.
import { performance } from 'node:perf_hooks'
import { serverCpuMs } from './server-cpu.mjs'

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

const reserve = async ({ orderId }) => ({ reservation: `r-${orderId}` })
const charge = async ({ orderId, amount }) => ({ charge: `c-${orderId}`, amount })
const inputOf = (id, i) => ({ orderId: id, amount: 10 + (i % 90) })
const expected = (id) => ({ reservation: `r-${id}`, charge: `c-${id}` })

/** Counts every statement the pg clients of this process send (`Client.prototype.query`), both sides alike. */
async function countStatements() {
  const pg = (await import('pg')).default
  const counter = { n: 0 }
  const query = pg.Client.prototype.query
  pg.Client.prototype.query = function countedQuery(...args) {
    counter.n++
    return query.apply(this, args)
  }
  return counter
}

/** Marks one edge of the measured window: wall clock, this process's CPU, the server's CPU, statements sent. */
const mark = (params, statements) => ({
  at: performance.now(),
  cpu: process.cpuUsage(),
  server: serverCpuMs(params.postmaster),
  statements: statements.n,
})

/** Runs `count` workflows through `lanes` concurrent lanes; `runOne(i)` resolves when workflow i is done. */
async function drive(lanes, count, runOne) {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(lanes, count) }, async () => {
      while (next < count) await runOne(next++)
    }),
  )
}

function summary(params, latencies, before, after, problems) {
  const steps = params.workflows * 2
  const seconds = (after.at - before.at) / 1000
  const cpu = process.cpuUsage(before.cpu)
  const sorted = Float64Array.from(latencies).sort()
  if (latencies.length !== steps) problems.push(`${latencies.length} step latencies recorded, expected ${steps}`)
  return {
    workflows: params.workflows,
    steps,
    seconds,
    rate: params.workflows / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpuUsPerStep: (cpu.user + cpu.system) / steps,
    cpuSystemUsPerStep: cpu.system / steps,
    serverCpuUsPerStep:
      before.server === undefined || after.server === undefined
        ? undefined
        : ((after.server - before.server) * 1000) / steps,
    statementsPerStep: (after.statements - before.statements) / steps,
    problems,
  }
}

// ------------------------------------------------------------------ @backplane/workflow

export async function twoStepOurs(params) {
  const statements = await countStatements()
  const { createEngine, defineMachine } = await import('@backplane/workflow')
  const { postgresStore } = await import('@backplane/workflow/postgres')
  const { z } = await import('zod')
  const machine = defineMachine({
    id: 'two-step',
    context: z.object({
      orderId: z.string(),
      amount: z.number(),
      reservation: z.string().optional(),
      charge: z.string().optional(),
    }),
    initial: 'reserving',
    states: {
      reserving: {
        invoke: {
          activity: 'reserve',
          input: (c) => ({ orderId: c.orderId }),
          onDone: { target: 'charging', assign: (_, e) => ({ reservation: e.output.reservation }) },
        },
      },
      charging: {
        invoke: {
          activity: 'charge',
          input: (c) => ({ orderId: c.orderId, amount: c.amount }),
          onDone: { target: 'done', assign: (_, e) => ({ charge: e.output.charge }) },
        },
      },
      done: { type: 'final' },
    },
  })
  const calls = { reserve: 0, charge: 0 }
  const engine = await createEngine({
    store: postgresStore({ connectionString: params.url, schema: params.schema, max: 10 }),
    machines: [machine],
    activities: {
      reserve: (input) => {
        calls.reserve++
        return reserve(input)
      },
      charge: (input) => {
        calls.charge++
        return charge(input)
      },
    },
  })
  const waiting = new Map()
  const lastCommit = new Map()
  let latencies = []
  engine.events.on('transition', ({ instanceId, kind }) => {
    const now = performance.now()
    if (kind === 'activity.done') latencies.push(now - lastCommit.get(instanceId))
    lastCommit.set(instanceId, now)
  })
  engine.events.on('instanceDone', ({ instanceId }) => {
    lastCommit.delete(instanceId)
    waiting.get(instanceId)?.()
  })
  const runAll = (prefix, count) =>
    drive(params.lanes, count, async (i) => {
      const id = `${prefix}-${i}`
      const done = new Promise((resolve) => waiting.set(id, resolve))
      await engine.start(machine, { id, input: inputOf(id, i) })
      await done
      waiting.delete(id)
    })
  await runAll('w', params.warmup)
  latencies = []
  const before = mark(params, statements)
  await runAll('m', params.workflows)
  const after = mark(params, statements)
  const result = summary(params, latencies, before, after, [])
  await engine.close()
  await checkOurs(params, calls, result.problems)
  return result
}

async function checkOurs(params, calls, problems) {
  const total = params.warmup + params.workflows
  if (calls.reserve !== total || calls.charge !== total)
    problems.push(`steps ran ${calls.reserve}/${calls.charge} times, expected ${total} each`)
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: params.url })
  await client.connect()
  const rows = (
    await client.query(
      `SELECT i.id, i.state, i.status, i.data, (SELECT count(*)::int FROM "${params.schema}".workflow_history h WHERE h.instance_id = i.id) AS transitions FROM "${params.schema}".workflow_instances i`,
    )
  ).rows
  await client.end()
  let bad = rows.length === total ? 0 : Math.abs(total - rows.length)
  for (const row of rows) {
    const data = typeof row.data === 'string' ? JSON.parse(row.data) : row.data
    const want = expected(row.id)
    const ok =
      row.state === 'done' &&
      row.status === 'done' &&
      row.transitions === 3 &&
      data?.context?.reservation === want.reservation &&
      data?.context?.charge === want.charge
    if (!ok) bad++
  }
  if (bad > 0)
    problems.push(`${bad} of ${total} instances are not done with 3 transitions and both step results committed`)
}

// ------------------------------------------------------------------ DBOS Transact

export async function twoStepDbos(params) {
  const statements = await countStatements()
  const { DBOS } = await import('@dbos-inc/dbos-sdk')
  const calls = { reserve: 0, charge: 0 }
  let latencies = []
  // As DBOS's programming guide writes a two-step workflow: DBOS.runStep per step, registered workflow.
  async function twoStep(input) {
    const t0 = performance.now()
    const reserved = await DBOS.runStep(
      () => {
        calls.reserve++
        return reserve({ orderId: input.orderId })
      },
      { name: 'reserve' },
    )
    const t1 = performance.now()
    const charged = await DBOS.runStep(
      () => {
        calls.charge++
        return charge({ orderId: input.orderId, amount: input.amount })
      },
      { name: 'charge' },
    )
    latencies.push(t1 - t0, performance.now() - t1)
    return { reservation: reserved.reservation, charge: charged.charge }
  }
  const workflow = DBOS.registerWorkflow(twoStep, { name: 'twoStep' })
  DBOS.setConfig({
    name: 'bench-two-step',
    applicationVersion: '0.1.0',
    systemDatabaseUrl: params.dbosUrl,
    systemDatabasePoolSize: params.dbosPoolSize,
  })
  await DBOS.launch()
  const problems = []
  const runAll = (prefix, count) =>
    drive(params.lanes, count, async (i) => {
      const id = `${prefix}-${i}`
      const result = await DBOS.withNextWorkflowID(id, () => workflow(inputOf(id, i)))
      const want = expected(id)
      if (result?.reservation !== want.reservation || result?.charge !== want.charge)
        problems.push(`workflow ${id} returned ${JSON.stringify(result)}`)
    })
  await runAll('w', params.warmup)
  latencies = []
  const before = mark(params, statements)
  await runAll('m', params.workflows)
  const after = mark(params, statements)
  const result = summary(params, latencies, before, after, problems.slice(0, 5))
  await DBOS.shutdown()
  await checkDbos(params, calls, result.problems)
  return result
}

async function checkDbos(params, calls, problems) {
  const total = params.warmup + params.workflows
  if (calls.reserve !== total || calls.charge !== total)
    problems.push(`steps ran ${calls.reserve}/${calls.charge} times, expected ${total} each`)
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: params.dbosUrl })
  await client.connect()
  const rows = (
    await client.query(
      `SELECT s.workflow_uuid AS id, s.status, array_agg(o.function_name ORDER BY o.function_id) AS steps
       FROM dbos.workflow_status s LEFT JOIN dbos.operation_outputs o USING (workflow_uuid)
       WHERE s.name = 'twoStep' GROUP BY s.workflow_uuid, s.status`,
    )
  ).rows
  await client.end()
  let bad = rows.length === total ? 0 : Math.abs(total - rows.length)
  for (const row of rows) if (row.status !== 'SUCCESS' || row.steps.join(',') !== 'reserve,charge') bad++
  if (bad > 0)
    problems.push(`${bad} of ${total} workflows are not SUCCESS with the outputs of reserve and charge checkpointed`)
}
