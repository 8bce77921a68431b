// The three queries, each as the same question put to backplane-logs, zgrep and rg -z, plus the
// floor (decompressing everything, searching nothing). Patterns for the grep tools are written to
// select exactly the lines backplane-logs selects on these files (checked on every run).

/** A regex alternation matching the decimal integers lo..hi (inclusive) of the same number of digits. */
export function integerRangePattern(lo, hi) {
  const a = String(lo)
  const b = String(hi)
  if (a.length !== b.length) throw new Error('integerRangePattern: bounds need the same number of digits')
  return ranges(a, b).join('|')
}

function ranges(a, b) {
  if (a.length === 0) return ['']
  if (a[0] === b[0]) return ranges(a.slice(1), b.slice(1)).map((rest) => a[0] + rest)
  const n = a.length - 1
  const any = n > 0 ? `[0-9]{${n}}` : ''
  const out = []
  let low = Number(a[0])
  let high = Number(b[0])
  if (!/^0*$/.test(a.slice(1))) {
    out.push(...ranges(a.slice(1), '9'.repeat(n)).map((rest) => a[0] + rest))
    low++
  }
  const upper = /^9*$/.test(b.slice(1)) ? [] : ranges('0'.repeat(n), b.slice(1)).map((rest) => b[0] + rest)
  if (upper.length > 0) high--
  if (low <= high) out.push(`${low === high ? low : `[${low}-${high}]`}${any}`)
  out.push(...upper)
  return out
}

const cli = 'packages/logging/bin/backplane-logs.js'

/** Queries for one data set; each tool is [command, args], run with the repo root as cwd. */
export function queriesFor(manifest, files, { node }) {
  const { needles, window } = manifest.spec
  const since = new Date(window.from).toISOString()
  const until = new Date(window.to).toISOString()
  // pino writes `"level":N,"time":T,` in this order; pino's levels at or above warn are 40, 50, 60.
  const windowRegex = `"level":(40|50|60),"time":(${integerRangePattern(window.from, window.to - 1)}),`
  // `fixed`: the pattern is plain text (-F); otherwise an extended regex (grep -E; rg's default syntax).
  const grepTools = (fixed, pattern) => ({
    zgrep: ['zgrep', ['-h', fixed ? '-F' : '-E', '--', pattern, ...files]],
    rg: [
      'rg',
      [
        '-z',
        '--no-filename',
        '--no-line-number',
        '--color',
        'never',
        ...(fixed ? ['-F'] : []),
        '--',
        pattern,
        ...files,
      ],
    ],
  })
  return [
    {
      id: 'trace',
      label: 'by trace id',
      question: `one trace across the 6 services: \`backplane-logs trace ${needles.traceId} <dir> --json\`; \`zgrep -h -F <id>\`; \`rg -z -F <id>\``,
      expected: manifest.expected.trace,
      tools: {
        ours: [node, [cli, 'trace', needles.traceId, manifest.logs, '--json']],
        ...grepTools(true, needles.traceId),
      },
    },
    {
      id: 'window',
      label: 'level ≥ warn in a 20-minute window',
      question: `\`backplane-logs <dir> --level warn --since ${since} --until ${until} --json\`; zgrep -E / rg -z with \`"level":(40|50|60),"time":(<the window's epoch ms as a ${integerRangePattern(window.from, window.to - 1).split('|').length}-way numeric-range alternation>),\``,
      expected: manifest.expected.window,
      tools: {
        ours: [node, [cli, manifest.logs, '--level', 'warn', '--since', since, '--until', until, '--json']],
        ...grepTools(false, windowRegex),
      },
    },
    {
      id: 'text',
      label: 'by text',
      question: `\`backplane-logs <dir> --grep '${needles.text}' --json\`; \`zgrep -h -F '${needles.text}'\`; \`rg -z -F '${needles.text}'\``,
      expected: manifest.expected.text,
      tools: {
        ours: [node, [cli, manifest.logs, '--grep', needles.text, '--json']],
        ...grepTools(true, needles.text),
      },
    },
  ]
}

/** The floor: every file decompressed (plain ones copied), nothing searched: `gzip -dcf <files> > /dev/null`. */
export function floorFor(files) {
  return ['gzip', ['-dcf', ...files]]
}
