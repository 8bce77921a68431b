// The `## logs-search` section of BENCHMARKS.md, from the summarized runs of run.mjs.
import { median } from '../lib/stats.mjs'

const sec = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a')
const spread = (s) => `${sec(s.median)} (${(s.min / 1000).toFixed(2)}–${(s.max / 1000).toFixed(2)})`
const x = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a')
const mb = (n) => (Number.isFinite(n) ? `${n.toFixed(0)} MB` : 'n/a')
const range = (xs) => (xs.length ? `${x(Math.min(...xs))}–${x(Math.max(...xs))}` : 'n/a')
const met = (cond) => (cond ? '**met**' : '**not met**')
const TOOL_LABEL = { ours: 'backplane-logs', zgrep: 'zgrep', rg: 'rg -z' }

export function renderSection(run) {
  const { results } = run
  const hasRg = results.some((r) => r.toolIds.includes('rg'))
  const tools = ['ours', 'zgrep', ...(hasRg ? ['rg'] : [])]
  const header = `| data | query | ${tools.map((t) => `${TOOL_LABEL[t]} (median, min–max)`).join(' | ')} | floor: \`gzip -dcf\` | backplane-logs ÷ floor | backplane-logs ÷ zgrep | files backplane-logs opened | lines (each tool) |`
  const rows = []
  for (const r of results) {
    for (const p of r.perQuery) {
      const cells = tools.map((t) => (p.byTool[t] ? spread(p.byTool[t]) : 'n/a'))
      const ours = p.byTool.ours.median
      const lines = p.problems.length === 0 ? `${p.query.expected}, as planted` : `**${p.problems.join('; ')}**`
      rows.push(
        `| ${r.size} | ${p.query.label} | ${cells.join(' | ')} | ${spread(r.floor)} | ${x(ours / r.floor.median)} | ${x(ours / p.byTool.zgrep.median)} | ${r.opened[p.query.id]} of ${r.data.files.length} | ${lines} |`,
      )
    }
  }
  const table = [header, `|${' --- |'.repeat(tools.length + 7)}`, ...rows].join('\n')

  const rssHeader = `| data | ${results[0].perQuery.map((p) => `backplane-logs, ${p.query.label}`).join(' | ')} | ${tools
    .filter((t) => t !== 'ours')
    .map((t) => `${TOOL_LABEL[t]} (largest)`)
    .join(' | ')} | floor |`
  const rssRows = results.map((r) => {
    const others = tools
      .filter((t) => t !== 'ours')
      .map((t) => mb(Math.max(...r.perQuery.map((p) => p.byTool[t]?.rssMB ?? Number.NaN))))
    return `| ${r.size} | ${r.perQuery.map((p) => mb(p.byTool.ours.rssMB)).join(' | ')} | ${others.join(' | ')} | ${mb(r.floor.rssMB)} |`
  })
  const rssTable = [rssHeader, `|${' --- |'.repeat(results[0].perQuery.length + tools.length + 1)}`, ...rssRows].join(
    '\n',
  )

  const targets = []
  for (const r of results) {
    for (const p of r.perQuery) {
      const ok = p.problems.length === 0
      const toFloor = p.byTool.ours.median / r.floor.median
      const toZgrep = p.byTool.ours.median / p.byTool.zgrep.median
      targets.push(
        `- ${r.size}, ${p.query.label}: within 1.5× of the floor ${met(ok && toFloor <= 1.5)} (${x(toFloor)}; per round ${range(p.toFloor)}); ahead of zgrep ${met(ok && toZgrep < 1)} (${x(toZgrep)}; per round ${range(p.toZgrep)})`,
      )
    }
    const windowQuery = r.perQuery.find((p) => p.query.id === 'window')
    if (windowQuery) {
      targets.push(
        `- ${r.size}, time-range query skips files: ${met(r.opened.window < r.data.files.length)} (opened ${r.opened.window} of ${r.data.files.length}; the other queries open all ${r.data.files.length})`,
      )
    }
  }
  if (results.length > 1) {
    const first = results[0]
    const last = results[results.length - 1]
    const peak = (r) => Math.max(...r.perQuery.map((p) => p.byTool.ours.rssMB))
    const growth = peak(last) / peak(first)
    targets.push(
      `- memory flat as the data grows: ${met(growth < 1.5)} (backplane-logs peak RSS ${mb(peak(first))} at ${first.size}, ${mb(peak(last))} at ${last.size}: ${x(growth)} for ${x(last.data.gzBytes / first.data.gzBytes)} the data)`,
    )
  }

  const dataLines = results.map((r) => {
    const m = r.manifest
    const spanH = (m.end - m.spec.start) / 3_600_000
    return `- ${r.size}: ${r.data.files.length} files in one directory, ${r.data.gzFiles} of them gzipped (${(r.data.gzBytes / 1e6).toFixed(0)} MB) plus each service's current \`.log\` (${(r.data.plainBytes / 1e6).toFixed(0)} MB); ${m.lines.toLocaleString('en-US')} lines over ${spanH.toFixed(1)} h of simulated time (${median([m.spec.stepMs])} ms between two lines of one writer); planted: one trace through all 6 services (${m.expected.trace} lines), "${m.spec.needles.text}" in ${m.expected.text} error lines; the window holds ${m.expected.window.toLocaleString('en-US')} lines at warn or above`
  })

  return [
    '## logs-search',
    '',
    `Command: \`${run.command}\` · ${run.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC · node ${run.node} · nproc ${run.nproc} (${run.cpu}) · load average (1/5/15 min) ${run.loadAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ${run.loadAtEnd.map((l) => l.toFixed(2)).join(' ')} at end · ${run.versions.gzip}; ${run.versions.zgrep}${run.versions.rg ? `; ${run.versions.rg}` : ''}`,
    '',
    `Data (generated once under \`${run.dataRoot}/<size>/\`, reused while its manifest matches): 6 services (the order-flow example's) logging through \`@backplane/logging\` itself (\`createLogger\` with \`file: { size: '10M', compress: 'gzip' }\`, correlation from the active span on 6 lines in 7, the HTTP middleware's request lines mixed in), two writer processes, with \`Date.now\` replaced by a simulated clock so that a day of traffic is written in minutes; the rolled files are the logger's own \`<service>.<UTC start>.<seq>.log.gz\`. Interval rotation is timer-driven, so with a simulated clock only size rotation happens.`,
    '',
    ...dataLines,
    '',
    `Each cell: ${run.rounds} interleaved rounds (every command once per round, the order rotated each round), page cache warm (every command reads the same files in each round). Times are wall-clock from spawn to exit of the command as a user types it (backplane-logs is the built CLI, \`node packages/logging/bin/backplane-logs.js\`, output \`--json\`); every command's output is counted and compared with the planted count and, as a set of lines, with the other tools' output. The floor decompresses every file and searches nothing. Ratios are of medians; "per round" divides each run by the same round's floor or zgrep run.`,
    '',
    table,
    '',
    `Peak RSS (GNU time's maximum resident set size: for zgrep and rg the largest single process of the command's tree — zgrep runs \`gzip | grep\` per file, \`rg -z\` a \`gzip -d\` per file; backplane-logs is one process):`,
    '',
    rssTable,
    '',
    'Targets:',
    '',
    ...targets,
    '',
  ].join('\n')
}
