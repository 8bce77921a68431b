// Logging throughput and memory: @backplane/logging against raw pino, pino-roll and winston, all in
// one run on one machine. Each measurement runs in its own process (worker.mjs) so that peak RSS is
// per variant; rounds are interleaved, with the order rotated each round; every run's output is
// counted (gzip included) before its figures are used. Writes the `## logging` section of
// BENCHMARKS.md. Run it with `npm run bench -- logging`.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt as buildIfNeeded } from '../lib/build.mjs'
import { median } from '../lib/stats.mjs'
import { runWorker } from '../lib/worker.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- logging'

// Overridable for a quick try; a run with other settings does not touch BENCHMARKS.md.
const LINES = Number(process.env.BENCH_LOGGING_LINES ?? 500_000)
const ROUNDS = Number(process.env.BENCH_LOGGING_ROUNDS ?? 5)
const isDefaultRun = process.env.BENCH_LOGGING_LINES === undefined && process.env.BENCH_LOGGING_ROUNDS === undefined
const WORKER_TIMEOUT_MS = 120_000

const VARIANTS = [
  { id: 'a', label: '(a) pino → `pino.destination({ sync: false })` (anchor)' },
  { id: 'b', label: '(b) @backplane/logging, gzip rolling, correlation on, in an active span' },
  {
    id: 'b3',
    label:
      '(b3) (b) + `openTelemetryLogs` into an SDK LoggerProvider (BatchLogRecordProcessor, exporter that discards)',
  },
  { id: 'b4', label: '(b4) (b) + `openTelemetryLogs`, no LoggerProvider registered' },
  { id: 'b0', label: '(b0) @backplane/logging, correlation off, in the same span' },
  {
    id: 'b2',
    label: '(b2) @backplane/logging, correlation off, the same three fields as static `base` fields, in the span',
  },
  { id: 'b1', label: '(b1) @backplane/logging, correlation off + naive pino `mixin`, in a span' },
  { id: 'c', label: "(c) pino → pino-roll (size '10m', daily)" },
  { id: 'd', label: "(d) winston json → winston-daily-rotate-file (maxSize '10m', gzip)" },
]
// Lines of these variants must carry the worker's trace id; the others must not carry one.
const TRACED = new Set(['b', 'b1', 'b2', 'b3', 'b4'])

function ensureBuilt() {
  buildIfNeeded('logging', ['index.js', 'trace-context.js'])
}

function runVariant(variant, dir) {
  return runWorker(join(here, 'worker.mjs'), [variant, String(LINES), dir], { cwd: root, timeoutMs: WORKER_TIMEOUT_MS })
}

/** Reads every file the variant wrote (gunzipping .gz) and checks that each of the N lines is there once. */
function countLines(dir, traceId) {
  const seen = new Uint8Array(LINES)
  let found = 0
  let duplicates = 0
  let malformed = 0
  let traced = 0
  let maxFileBytes = 0
  let partialEnds = 0
  const files = readdirSync(dir).sort()
  const names = new Set(files)
  const leftovers = files.filter((f) => f.endsWith('.tmp') || (!f.endsWith('.gz') && names.has(`${f}.gz`)))
  const traceField = traceId ? `"trace_id":"${traceId}"` : '"trace_id"'
  for (const file of files) {
    const path = join(dir, file)
    if (!statSync(path).isFile() || file.endsWith('.tmp')) continue
    let buf = readFileSync(path)
    if (file.endsWith('.gz')) {
      try {
        buf = gunzipSync(buf)
      } catch {
        malformed++ // a truncated archive
        continue
      }
    }
    maxFileBytes = Math.max(maxFileBytes, buf.length)
    if (buf.length > 0 && buf[buf.length - 1] !== 10) partialEnds++
    const text = buf.toString('utf8')
    let start = 0
    while (start < text.length) {
      let end = text.indexOf('\n', start)
      if (end === -1) end = text.length
      const line = text.slice(start, end)
      start = end + 1
      if (line.length === 0) continue
      const m = /"i":(\d+)[,}]/.exec(line)
      const i = m ? Number(m[1]) : -1
      if (i < 0 || i >= LINES || !line.includes('order accepted') || line.charCodeAt(line.length - 1) !== 125) {
        malformed++
        continue
      }
      found++
      if (seen[i]) duplicates++
      else seen[i] = 1
      if (line.includes(traceField)) traced++
    }
  }
  const unique = found - duplicates
  return { found, unique, missing: LINES - unique, duplicates, malformed, traced, maxFileBytes, partialEnds, leftovers }
}

const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtK = (n) => (Number.isFinite(n) ? `${Math.round(n / 1000).toLocaleString('en-US')}k` : 'n/a')
const fmtX = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a')
const fmtPct = (n) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : 'n/a')

async function main() {
  ensureBuilt()
  const startedAt = new Date()
  const load = loadavg()
  process.stdout.write(
    `logging bench: ${VARIANTS.length} variants × ${ROUNDS} rounds × ${fmtInt(LINES)} lines, node ${process.version}, nproc ${availableParallelism()}, load ${load.map((l) => l.toFixed(2)).join(' ')}\n`,
  )
  /** runs[variant] = [{ linesPerSec, rssMB, closeMs, count, events, ok, problem, stderr }] */
  const runs = Object.fromEntries(VARIANTS.map((v) => [v.id, []]))
  const perRound = [] // [{ a: linesPerSec, b: …}]
  for (let round = 0; round < ROUNDS; round++) {
    const order = VARIANTS.map((_, k) => VARIANTS[(k + round) % VARIANTS.length].id)
    const roundResults = {}
    for (const id of order) {
      const tmp = mkdtempSync(join(tmpdir(), `bench-logging-${id}-`))
      const logs = join(tmp, 'logs')
      mkdirSync(logs)
      try {
        const { result, code, signal, stderr } = await runVariant(id, logs)
        if (!result) {
          const why = signal ? `killed (${signal})` : `exit ${code}`
          runs[id].push({ ok: false, problem: `worker ${why}`, stderr })
          process.stdout.write(
            `  round ${round + 1} ${id.padEnd(2)} FAILED: ${why} ${stderr.split('\n').slice(-3).join(' | ')}\n`,
          )
          continue
        }
        const count = countLines(logs, result.traceId)
        const linesPerSec = LINES / (result.elapsedMs / 1000)
        const problems = []
        if (count.missing > 0) problems.push(`lost ${fmtInt(count.missing)} lines`)
        if (count.duplicates > 0) problems.push(`${fmtInt(count.duplicates)} duplicate lines`)
        if (count.malformed > 0) problems.push(`${fmtInt(count.malformed)} malformed lines/archives`)
        if (count.partialEnds > 0) problems.push(`${count.partialEnds} file(s) ending mid-line`)
        if (count.leftovers.length > 0) problems.push(`left over: ${count.leftovers.join(', ')}`)
        if (TRACED.has(id) && count.traced !== count.found)
          problems.push(`trace_id on ${fmtInt(count.traced)} of ${fmtInt(count.found)} lines`)
        if (!TRACED.has(id) && count.traced > 0) problems.push(`unexpected trace_id on ${fmtInt(count.traced)} lines`)
        const ev = result.events ?? {}
        if (ev.error?.length) problems.push(`error events: ${[...new Set(ev.error)].join('; ')}`)
        if (ev.fallback?.length) problems.push(`fallback: ${ev.fallback.join('; ')}`)
        if (ev.drop) problems.push(`dropped ${ev.drop} lines`)
        const entry = {
          ok: true,
          linesPerSec,
          rssMB: result.maxRssMB,
          cpuUsPerLine: (result.cpuMs * 1000) / LINES,
          gzip: result.gzip,
          closeMs: result.closeMs,
          otelExported: result.otelExported,
          count,
          events: ev,
          problem: problems.join('; '),
          stderr,
        }
        runs[id].push(entry)
        roundResults[id] = linesPerSec
        process.stdout.write(
          `  round ${round + 1} ${id.padEnd(2)} ${fmtK(linesPerSec).padStart(6)} lines/s  rss ${result.maxRssMB.toFixed(0).padStart(4)} MB  close ${result.closeMs.toFixed(0).padStart(5)} ms  on disk ${fmtInt(count.unique)}/${fmtInt(LINES)}${problems.length ? `  !! ${entry.problem}` : ''}${stderr ? `  stderr: ${stderr.split('\n')[0].slice(0, 160)}` : ''}\n`,
        )
      } finally {
        rmSync(tmp, { recursive: true, force: true })
      }
    }
    perRound.push(roundResults)
  }

  // Aggregate.
  const stats = {}
  for (const { id } of VARIANTS) {
    const ok = runs[id].filter((r) => r.ok)
    const rates = ok.map((r) => r.linesPerSec)
    stats[id] = {
      runs: runs[id].length,
      okRuns: ok.length,
      median: median(rates),
      min: Math.min(...rates),
      max: Math.max(...rates),
      rss: median(ok.map((r) => r.rssMB)),
      closeMs: median(ok.map((r) => r.closeMs)),
      cpuUsPerLine: median(ok.map((r) => r.cpuUsPerLine)),
      otelExported: median(ok.filter((r) => r.otelExported !== undefined).map((r) => r.otelExported)),
      gzipRotated: median(ok.filter((r) => r.gzip).map((r) => r.gzip.rotated)),
      gzipBacklog: median(ok.filter((r) => r.gzip).map((r) => r.gzip.backlogAtFlush)),
      medianToClosed: median(ok.map((r) => LINES / (LINES / r.linesPerSec + r.closeMs / 1000))),
      maxFileMB: Math.max(...ok.map((r) => r.count.maxFileBytes)) / 1024 ** 2,
      complete: ok.filter((r) => r.count.missing === 0 && r.count.duplicates === 0 && r.count.malformed === 0).length,
      worstMissing: Math.max(0, ...ok.map((r) => r.count.missing)),
      worstDup: Math.max(0, ...ok.map((r) => r.count.duplicates)),
      traced: ok.every((r) => r.count.traced === r.count.found)
        ? 'all'
        : ok.every((r) => r.count.traced === 0)
          ? 'none'
          : 'partial',
      problems: [...new Set(runs[id].map((r) => r.problem).filter(Boolean))],
      stderr: [...new Set(runs[id].map((r) => r.stderr).filter(Boolean))],
    }
  }
  const anchor = stats.a.median
  const paired = (x, y) => perRound.filter((r) => r[x] !== undefined && r[y] !== undefined).map((r) => r[x] / r[y])
  const range = (xs) => (xs.length ? `${fmtX(Math.min(...xs))}–${fmtX(Math.max(...xs))}` : 'n/a')

  const header =
    '| variant | lines/s (median) | spread (min–max) | ratio to (a) | CPU µs/line (median) | peak RSS (median) | close/settle (median) | lines/s to closed (median) | largest file | lines on disk | trace_id |'
  const rows = VARIANTS.map(({ id, label }) => {
    const s = stats[id]
    const disk =
      s.okRuns === 0
        ? 'no run finished'
        : s.complete === s.runs
          ? `all ${fmtInt(LINES)}, ${s.complete}/${s.runs} runs`
          : `complete in ${s.complete}/${s.runs} runs; worst: lost ${fmtInt(s.worstMissing)}${s.worstDup ? `, ${fmtInt(s.worstDup)} dup` : ''}`
    return `| ${label} | ${fmtInt(s.median)} | ${fmtInt(s.min)}–${fmtInt(s.max)} | ${fmtX(s.median / anchor)} | ${s.cpuUsPerLine.toFixed(2)} | ${s.rss.toFixed(0)} MB | ${s.closeMs.toFixed(0)} ms | ${fmtInt(s.medianToClosed)} | ${s.maxFileMB.toFixed(1)} MB | ${disk} | ${s.traced} |`
  })
  const table = [header, `|${' --- |'.repeat(11)}`, ...rows].join('\n')

  const b = stats.b
  const bOk = b.complete === b.runs && b.traced === 'all'
  const r1 = b.median / stats.a.median
  const r2 = b.median / stats.d.median
  const overhead = 1 - b.median / stats.b0.median
  const naive = 1 - stats.b1.median / stats.b0.median
  const codeOnly = 1 - b.median / stats.b2.median
  const met = (cond) => (cond ? '**met**' : '**not met**')
  // The verdict uses the ratio of medians; the per-round (paired) ratios show how sure it is.
  const pr1 = paired('b', 'a')
  const pr2 = paired('b', 'd')
  const pr3 = paired('b', 'b0')
  const sure = (xs, atLeast) =>
    xs.length > 0 && Math.min(...xs) < atLeast && Math.max(...xs) >= atLeast
      ? '; rounds fall on both sides of the target, so this is within the noise'
      : ''
  const perRoundText = (xs) => `per round ${range(xs)}, median ${fmtX(median(xs))}`
  const targets = [
    `- (b) ≥ 0.85× (a): ${met(r1 >= 0.85 && bOk)}: ${fmtX(r1)} (${fmtInt(b.median)} vs ${fmtInt(stats.a.median)} lines/s; ${perRoundText(pr1)}${sure(pr1, 0.85)})`,
    `- (b) ≥ 4× (d): ${met(r2 >= 4 && bOk)}: ${fmtX(r2)} (${fmtInt(b.median)} vs ${fmtInt(stats.d.median)} lines/s; ${perRoundText(pr2)}${sure(pr2, 4)})`,
    `- correlation overhead in an active span ≤ 10%: ${met(overhead <= 0.1 && bOk)}: ${fmtPct(overhead)} fewer lines/s for (b) than (b0) ((b)/(b0) ${perRoundText(pr3)}${sure(pr3, 0.9)}); CPU per line ${fmtPct(b.cpuUsPerLine / stats.b0.cpuUsPerLine - 1)} more; for comparison the naive mixin (b1) costs ${fmtPct(naive)} (CPU per line ${fmtPct(stats.b1.cpuUsPerLine / stats.b0.cpuUsPerLine - 1)} more) ((b1)/(b0) ${perRoundText(paired('b1', 'b0'))})`,
    `- of that, the lookup and splicing of the ids (b against (b2), which writes the same bytes with no lookup): ${fmtPct(codeOnly)} ((b)/(b2) ${perRoundText(paired('b', 'b2'))}); the rest is the cost of writing and compressing ~90 more bytes per line`,
  ]
  // The hand-off's budget: no more than correlation costs, on top of (b).
  const handOff = 1 - stats.b3.median / b.median
  const unused = 1 - stats.b4.median / b.median
  const pr4 = paired('b3', 'b')
  targets.push(
    `- OpenTelemetry Logs hand-off into an SDK (b3) costs the file path no more than correlation does (${fmtPct(overhead)}): ${met(handOff <= Math.max(overhead, 0) && bOk)}: ${fmtPct(handOff)} fewer lines/s for (b3) than (b) ((b3)/(b) ${perRoundText(pr4)}${sure(pr4, 1 - Math.max(overhead, 0))}); CPU per line ${fmtPct(stats.b3.cpuUsPerLine / b.cpuUsPerLine - 1)} more; the SDK exported ${fmtInt(stats.b3.otelExported)} of ${fmtInt(LINES)} records (median)${stats.b3.otelExported < LINES ? ', its batch processor dropping the rest when its queue (2,048) was full' : ''}`,
    `- the option on with no LoggerProvider registered (b4) costs ~nothing: ${fmtPct(unused)} fewer lines/s than (b) ((b4)/(b) ${perRoundText(paired('b4', 'b'))})`,
  )
  if (!bOk)
    targets.push(
      '- (b) did not write every line exactly once with its trace_id in every run: targets involving it count as not met',
    )

  const notes = []
  for (const { id } of VARIANTS) {
    const s = stats[id]
    if (s.gzipRotated > 0)
      notes.push(
        `- (${id}): ${s.gzipBacklog} of ${s.gzipRotated} rotated files were still waiting for gzip when the last line was written (median)`,
      )
  }
  for (const { id } of VARIANTS) {
    for (const p of stats[id].problems) notes.push(`- (${id}): ${p}`)
    for (const e of stats[id].stderr) notes.push(`- (${id}) stderr: \`${e.split('\n')[0].slice(0, 200)}\``)
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const section = [
    '## logging',
    '',
    `Command: \`${COMMAND}\` · ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${process.version} · nproc ${availableParallelism()} (${cpu}) · load average (1/5/15 min) ${load.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end`,
    '',
    `Each cell: ${ROUNDS} interleaved rounds (order rotated each round), each run a fresh process logging ${fmtInt(LINES)} × \`info({ i, orderId, amount }, 'order accepted')\` to files in a fresh temp dir, yielding to the event loop every 1,000 lines. lines/s = lines ÷ time until every line was handed to the OS (no fsync); peak RSS = the process's \`maxRSS\`; close/settle = time after that to close (pino: \`end()\`, which fsyncs; @backplane/logging: \`close()\`, which waits for gzip of rotated files; winston: until every rotated file is gzipped), and lines/s to closed counts it in; lines on disk = lines counted in the files afterwards (.gz decompressed), each \`i\` expected exactly once. The (b*) variants all register the AsyncLocalStorage context manager, so their differences are the cost of correlation alone.`,
    '',
    table,
    '',
    'Targets:',
    '',
    ...targets,
    '',
    ...(notes.length ? ['Notes and problems seen:', '', ...notes, ''] : []),
  ].join('\n')

  publishSection('logging', section, { isDefaultRun, overrides: 'BENCH_LOGGING_LINES/ROUNDS' })
}

await main()
