// The two-step durable workflow, @backplane/workflow against DBOS Transact on one PostgreSQL server:
// its variants and sizes (run.mjs runs them) and its part of the `## workflow` section.
import { median } from '../lib/stats.mjs'

export const TWO_STEP_LANES = 256
export const TWO_STEP_WARMUP = 256
export const TWO_STEP_WORKFLOWS = 2000

export const TWO_STEP = [
  {
    id: 'two-wf-pg',
    store: 'pg',
    label: '(e) @backplane/workflow, PostgreSQL 15 (defaults: pool of 10, group commit)',
  },
  {
    id: 'two-dbos',
    store: 'dbos',
    label: '(f) DBOS Transact 5.3, same PostgreSQL, own system database (defaults: pool of 10)',
  },
]

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => (n >= 100 ? fmtInt(n) : n.toFixed(1))
const fmtUs = (n) => (Number.isNaN(n) ? 'n/a' : n.toFixed(0))

/** The paragraph that says what was run and measured. */
const description = (rounds) =>
  `Two-step durable workflow, (e) and (f): ${rounds} rounds, ours and DBOS back to back in each round (which goes first alternates), each run a fresh process with a fresh schema (ours) or a fresh system database created by DBOS at launch (DBOS), both on the PostgreSQL server above. The workflow takes { orderId, amount }; step \`reserve\` returns a reservation id, step \`charge\` a charge id, the workflow ends with both; the steps do no I/O, so the figures are what each engine costs to make the workflow durable. ${TWO_STEP_LANES} workflows run at once (each of ${TWO_STEP_LANES} lanes starts its next workflow when its last one is done), ${fmtInt(TWO_STEP_WORKFLOWS)} workflows per run after a warm-up of ${TWO_STEP_WARMUP} (both sides). Ours: a machine \`reserving\` (invoke reserve) → \`charging\` (invoke charge) → \`done\`, \`engine.start\`, done when \`instanceDone\` fires; everything at its defaults (\`concurrency\` 64, \`max\` 10). DBOS: \`DBOS.registerWorkflow\` of a function that awaits \`DBOS.runStep\` twice (as in DBOS's programming guide), called through \`DBOS.withNextWorkflowID\`; \`DBOS.setConfig({ name, applicationVersion, systemDatabaseUrl })\`, so its defaults: system database pool of 10, log level info, no tracing/OTLP (a pool of 20 or 40 was no faster in a trial on this machine). Workflows/s = workflows / measured window. Per-step latency, defined the same for both: from the commit the step waits for being durable (the start, or the previous step's result) to its own result being durable; ours: the times of the \`transition\` events that follow each commit; DBOS: around each \`DBOS.runStep\`, which returns after its checkpoint. CPU per step = CPU used in the measured window / (2 × workflows): the benchmark process (\`process.cpuUsage\`) and the PostgreSQL server (utime + stime of the postmaster and all its children from /proc, reaped children included), read at the window's edges, so launch, schema creation and checks are outside it. Statements per step: every \`query\` the process's pg clients sent in the window (BEGIN and COMMIT included). Checked after each run: every workflow done with both step results stored once (ours: state, context, 3 history rows; DBOS: status SUCCESS and the outputs of reserve and charge in \`operation_outputs\`), each step function called once per workflow, each result as expected; else the run is discarded.`

/** The table, the targets and the notes of the two-step comparison, from each variant's kept runs. */
export function twoStepReport(runs, problems, rounds) {
  const of = (id, field) => {
    const values = runs[id].map((r) => r[field]).filter((x) => typeof x === 'number')
    return values.length ? median(values) : Number.NaN
  }
  const range = (values, fmt) => (values.length ? `${fmt(Math.min(...values))}–${fmt(Math.max(...values))}` : '-')
  // The median of each run's total (process + server), so the figure is one run's, not two halves' of two.
  const total = (id) => {
    const totals = runs[id].map((r) => r.cpuUsPerStep + r.serverCpuUsPerStep).filter((x) => !Number.isNaN(x))
    return totals.length ? median(totals) : Number.NaN
  }
  const rows = [
    '| variant | workflows per run | workflows/s (median) | spread (min–max) | per-step latency p50 (median) | p99 (median) | CPU µs per step: process / PostgreSQL server (median) | statements per step | checked |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...TWO_STEP.map((v) => {
      const ok = runs[v.id]
      return `| ${v.label} | ${fmtInt(TWO_STEP_WORKFLOWS)} | ${ok.length ? fmtInt(of(v.id, 'rate')) : '-'} | ${range(
        ok.map((r) => r.rate),
        fmtInt,
      )} | ${ok.length ? `${fmtMs(of(v.id, 'p50'))} ms` : '-'} | ${ok.length ? `${fmtMs(of(v.id, 'p99'))} ms` : '-'} | ${fmtUs(of(v.id, 'cpuUsPerStep'))} / ${fmtUs(of(v.id, 'serverCpuUsPerStep'))} | ${ok.length ? of(v.id, 'statementsPerStep').toFixed(2) : '-'} | ${ok.length}/${rounds} runs: every workflow done, each step's result stored once |`
    }),
  ]
  const [ours, dbos] = TWO_STEP.map((v) => v.id)
  const paired = (f) =>
    runs[ours].flatMap((a) => {
      const b = runs[dbos].find((r) => r.round === a.round)
      return b ? [f(a, b)] : []
    })
  const rateRatios = paired((a, b) => a.rate / b.rate)
  const cpuRatios = paired(
    (a, b) => (a.cpuUsPerStep + a.serverCpuUsPerStep) / (b.cpuUsPerStep + b.serverCpuUsPerStep),
  ).filter((x) => !Number.isNaN(x))
  const rateRatio = of(ours, 'rate') / of(dbos, 'rate')
  const cpuRatio = total(ours) / total(dbos)
  const x = (n) => `${n.toFixed(1)}×`
  const perRound = (values, fmt) => (values.length ? `per round ${range(values, fmt)}` : 'no paired rounds')
  const verdict = (value, ok) => (Number.isNaN(value) ? '**not measured**' : ok ? '**met**' : '**not met**')
  const targets = [
    `- ≥ 3× DBOS's workflows/s: ${verdict(rateRatio, rateRatio >= 3)}: ${x(rateRatio)} (${fmtInt(of(ours, 'rate'))} vs ${fmtInt(of(dbos, 'rate'))} workflows/s; ${perRound(rateRatios, x)})`,
    `- ≤ 1/3 of DBOS's CPU per step (process + server): ${verdict(cpuRatio, cpuRatio <= 1 / 3)}: ${fmtUs(total(ours))} µs vs ${fmtUs(total(dbos))} µs, 1/${(1 / cpuRatio).toFixed(1)} of DBOS's (${perRound(
      cpuRatios.map((r) => 1 / r),
      (n) => `1/${n.toFixed(1)}`,
    )}); process alone 1/${(of(dbos, 'cpuUsPerStep') / of(ours, 'cpuUsPerStep')).toFixed(1)}, server alone 1/${(of(dbos, 'serverCpuUsPerStep') / of(ours, 'serverCpuUsPerStep')).toFixed(1)}`,
  ]
  const notes = [
    `- Two-step workflow, per-step latency: ours p50 ${fmtMs(of(ours, 'p50'))} ms / p99 ${fmtMs(of(ours, 'p99'))} ms, DBOS p50 ${fmtMs(of(dbos, 'p50'))} ms / p99 ${fmtMs(of(dbos, 'p99'))} ms with ${TWO_STEP_LANES} workflows in flight. Statements per step: ours ${of(ours, 'statementsPerStep').toFixed(2)} (commits are grouped: one statement carries many instances' transitions), DBOS ${of(dbos, 'statementsPerStep').toFixed(1)} (per step: a cancellation check and a read of the step's earlier output before it runs, then a transaction that locks the workflow's status row and inserts the output; per workflow also a transaction for the status and input rows at the start and one for the final status and output: 4 commits per workflow against our 3, each of ours shared by a group).`,
    ...TWO_STEP.flatMap((v) => problems[v.id].map((p) => `- ${v.id}: ${p}`)),
  ]
  return { description: description(rounds), rows, targets, notes }
}
