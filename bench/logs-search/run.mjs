// Log search at scale: backplane-logs (the built CLI, as a user runs it) against zgrep and rg -z on
// the same rotated, gzipped files of 6 services, with `gzip -dcf` (decompress everything, search
// nothing) as the floor. Each query's output is checked against the count planted in the data
// and against the other tools' lines. Writes the `## logs-search` section of BENCHMARKS.md.
//
//   npm run bench -- logs-search                       100 MB then 1 GB (the recorded run)
//   node bench/logs-search/run.mjs --size 100M [--rounds 3]   a quick run; BENCHMARKS.md untouched
//   (or BENCH_LOGS_SEARCH_SIZES=100M BENCH_LOGS_SEARCH_ROUNDS=3 npm run bench -- logs-search)

import { spawnSync } from 'node:child_process'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { publishSection } from '../lib/benchmarks-md.mjs'
import { ensureBuilt } from '../lib/build.mjs'
import { median } from '../lib/stats.mjs'
import { DATA_ROOT, ensureDataset, listFiles, parseSize } from './dataset.mjs'
import { hasGnuTime, measure } from './measure.mjs'
import { floorFor, queriesFor } from './queries.mjs'
import { renderSection } from './report.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const COMMAND = 'npm run bench -- logs-search'
const DEFAULT_SIZES = ['100M', '1G']
const DEFAULT_ROUNDS = 3

const { values } = parseArgs({
  options: { size: { type: 'string', multiple: true }, rounds: { type: 'string' } },
  strict: true,
})
const sizeArg = values.size ?? process.env.BENCH_LOGS_SEARCH_SIZES?.split(',')
const roundsArg = values.rounds ?? process.env.BENCH_LOGS_SEARCH_ROUNDS
const SIZES = sizeArg ?? DEFAULT_SIZES
const ROUNDS = roundsArg === undefined ? DEFAULT_ROUNDS : Number(roundsArg)
const isDefaultRun = sizeArg === undefined && roundsArg === undefined
if (SIZES.some((size) => parseSize(size) === undefined) || !(Number.isInteger(ROUNDS) && ROUNDS >= 1)) {
  process.stderr.write('usage: node bench/logs-search/run.mjs [--size 100M|1G ...] [--rounds N]\n')
  process.exit(2)
}

const out = (text) => process.stdout.write(text)
const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0

function toolsAvailable() {
  const missing = ['gzip', 'zgrep'].filter((tool) => !has(tool))
  if (missing.length > 0) {
    process.stderr.write(`${missing.join(' and ')} not found: install gzip (apt-get install gzip)\n`)
    process.exit(1)
  }
  const rg = has('rg')
  if (!rg) {
    out(
      'ripgrep (rg) not found: its column is left out. Install it with `apt-get install ripgrep` (Debian/Ubuntu), `dnf install ripgrep` or `brew install ripgrep`.\n',
    )
  }
  const rgVersion = rg ? spawnSync('rg', ['--version']).stdout.toString().split('\n')[0] : undefined
  const zgrepVersion = spawnSync('zgrep', ['--version']).stdout.toString().split('\n')[0]
  const grepVersion = spawnSync('grep', ['--version']).stdout.toString().split('\n')[0]
  const gzipVersion = spawnSync('gzip', ['--version']).stdout.toString().split('\n')[0]
  return { rg, versions: { rg: rgVersion, zgrep: `${zgrepVersion} (${grepVersion})`, gzip: gzipVersion } }
}

/** Files backplane-logs opens for a query (an untimed run with count-opens.mjs preloaded). */
function filesOpened([command, args]) {
  const result = spawnSync(command, ['--import', join(here, 'count-opens.mjs'), ...args], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const m = /opened (\d+)/.exec(result.stderr.toString())
  return m ? Number(m[1]) : Number.NaN
}

async function benchSize(size, tools) {
  const manifest = await ensureDataset(size, out)
  const data = listFiles(manifest.logs)
  out(
    `${size}: ${data.files.length} files (${data.gzFiles} gzipped, ${(data.gzBytes / 1e6).toFixed(0)} MB; ${((data.plainBytes / 1e6) | 0).toLocaleString('en-US')} MB in the ${data.files.length - data.gzFiles} current .log files), ${manifest.lines.toLocaleString('en-US')} lines\n`,
  )
  const queries = queriesFor(manifest, data.files, { node: process.execPath })
  const toolIds = ['ours', 'zgrep', ...(tools.rg ? ['rg'] : [])]
  const floor = floorFor(data.files)
  const opened = Object.fromEntries(queries.map((q) => [q.id, filesOpened(q.tools.ours)]))
  /** runs[query][tool] = [{ ms, rssKB, lines, sum, code }]; runs.floor.floor likewise */
  const runs = { floor: { floor: [] } }
  for (const q of queries) runs[q.id] = Object.fromEntries(toolIds.map((t) => [t, []]))
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved: every tool once per query per round, the order rotated each round.
    const steps = [{ query: 'floor', tool: 'floor', command: floor, discard: true }]
    for (const q of queries) for (const t of toolIds) steps.push({ query: q.id, tool: t, command: q.tools[t] })
    const order = steps.map((_, k) => steps[(k + round * 3) % steps.length])
    for (const step of order) {
      const result = await measure(step.command, { cwd: root, discard: step.discard })
      runs[step.query][step.tool].push(result)
      out(
        `  ${size} round ${round + 1} ${step.query.padEnd(6)} ${step.tool.padEnd(5)} ${(result.ms / 1000).toFixed(2).padStart(7)} s  rss ${(result.rssKB / 1024).toFixed(0).padStart(4)} MB${step.discard ? '' : `  ${result.lines} lines`}${result.code !== 0 && !(result.code === 1 && result.lines === 0) ? `  exit ${result.code ?? result.signal} ${result.stderr.slice(0, 200)}` : ''}\n`,
      )
    }
  }
  return { size, manifest, data, queries, toolIds, runs, opened }
}

function summarize(result) {
  const { queries, toolIds, runs } = result
  const stat = (list) => {
    const ms = list.map((r) => r.ms)
    return {
      median: median(ms),
      min: Math.min(...ms),
      max: Math.max(...ms),
      rssMB: Math.max(...list.map((r) => r.rssKB)) / 1024,
    }
  }
  const floor = stat(runs.floor.floor)
  const perQuery = queries.map((q) => {
    const byTool = Object.fromEntries(toolIds.map((t) => [t, stat(runs[q.id][t])]))
    // Per round: the tool's time over the same round's floor / zgrep run.
    const paired = (t, other) => runs[q.id][t].map((r, k) => r.ms / other[k].ms)
    const problems = []
    const sums = new Set()
    for (const t of toolIds) {
      for (const r of runs[q.id][t]) {
        if (r.lines !== q.expected) problems.push(`${t} printed ${r.lines} lines, ${q.expected} expected`)
        if (r.code !== 0)
          problems.push(`${t} exited ${r.code ?? r.signal}${r.stderr ? `: ${r.stderr.split('\n')[0]}` : ''}`)
        sums.add(r.sum)
      }
    }
    if (sums.size > 1) problems.push('the tools did not print the same lines')
    return {
      query: q,
      byTool,
      toFloor: paired('ours', runs.floor.floor),
      toZgrep: paired('ours', runs[q.id].zgrep),
      problems: [...new Set(problems)],
    }
  })
  return { ...result, floor, perQuery }
}

async function main() {
  const tools = toolsAvailable()
  ensureBuilt('logging', ['cli.js', 'index.js'])
  const startedAt = new Date()
  const loadAtStart = loadavg()
  out(
    `logs-search bench: sizes ${SIZES.join(', ')} × ${ROUNDS} rounds, node ${process.version}, nproc ${availableParallelism()}, load ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, peak RSS ${hasGnuTime() ? 'from GNU time' : 'not measured (no /usr/bin/time)'}\n`,
  )
  const results = []
  for (const size of SIZES) results.push(summarize(await benchSize(size, tools)))
  const section = renderSection({
    command: COMMAND,
    startedAt,
    node: process.version,
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    loadAtStart,
    loadAtEnd: loadavg(),
    rounds: ROUNDS,
    dataRoot: DATA_ROOT,
    versions: tools.versions,
    results,
  })
  publishSection('logs-search', section, { isDefaultRun, overrides: '--size/--rounds' })
}

await main()
