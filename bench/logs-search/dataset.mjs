// The data set: 6 services' rotated, gzipped log files written by @backplane/logging itself (see
// generate-worker.mjs), generated once per size under /var/tmp/backplane-logs-search/<size>/ and
// reused while its manifest.json (written last, so only a complete set has one) matches this spec.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runWorker } from '../lib/worker.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
export const DATA_ROOT = '/var/tmp/backplane-logs-search'

/** Bumped whenever the generator changes what it writes, so that an old cached set is not reused. */
const FORMAT = 1
/** Compressed bytes per line, measured on this generator's output (level-1 gzip, ~260-byte lines). */
const GZ_BYTES_PER_LINE = 28.6
/** Simulated time between two lines of one worker: ~400 lines/s over 6 services. */
const STEP_MS = 5
const START = Date.UTC(2026, 10, 2, 0, 0, 0)
const SHARES = [
  ['orders', 'payment', 'inventory'],
  ['shipping', 'notification', 'analytics'],
]
export const NEEDLES = {
  traceId: '5d0f3c1e8a7b4e2f9c6d1a3b7e8f0a42',
  traceAt: 0.55,
  text: 'checksum mismatch',
  textAt: [0.13, 0.37, 0.71, 0.93],
}
const WINDOW_MINUTES = 20
const WINDOW_AT = 0.6

/** '100M' → 100e6, '1G' → 1e9 (decimal, as `du --si` shows). */
export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([MG])B?$/i.exec(text)
  if (!m) return undefined
  return Number(m[1]) * (m[2].toUpperCase() === 'G' ? 1e9 : 1e6)
}

function specFor(size) {
  const linesPerShare = Math.round(parseSize(size) / GZ_BYTES_PER_LINE / SHARES.length)
  const span = linesPerShare * STEP_MS
  const from = START + Math.floor((span * WINDOW_AT) / 60_000) * 60_000
  return {
    format: FORMAT,
    size,
    linesPerShare,
    start: START,
    stepMs: STEP_MS,
    needles: NEEDLES,
    window: { from, to: from + WINDOW_MINUTES * 60_000 },
  }
}

function readManifest(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
  } catch {
    return undefined
  }
}

/** The data set of `size` ('100M', '1G'), generated first when missing or stale; returns its manifest. */
export async function ensureDataset(size, log) {
  const dir = join(DATA_ROOT, size)
  const logs = join(dir, 'logs')
  const spec = specFor(size)
  const cached = readManifest(dir)
  if (cached && JSON.stringify(cached.spec) === JSON.stringify(spec) && existsSync(logs)) {
    return { ...cached, dir, logs }
  }
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(logs, { recursive: true })
  log(`generating the ${size} data set in ${logs} (once; reused by later runs)…\n`)
  const began = performance.now()
  const results = await Promise.all(
    SHARES.map((services, k) =>
      runWorker(
        join(here, 'generate-worker.mjs'),
        [
          JSON.stringify({
            dir: logs,
            services,
            lines: spec.linesPerShare,
            start: spec.start,
            stepMs: spec.stepMs,
            seed: 1000 + k,
            needles: spec.needles,
            window: spec.window,
          }),
        ],
        { cwd: root, timeoutMs: 3 * 3600_000 },
      ),
    ),
  )
  const failed = results.find((r) => !r.result)
  if (failed)
    throw new Error(`generating the data set failed: exit ${failed.code} ${failed.signal ?? ''} ${failed.stderr}`)
  const problems = results.flatMap((r) => [
    ...r.result.events.error,
    ...r.result.events.fallback,
    ...(r.result.events.drop ? [`dropped ${r.result.events.drop} lines`] : []),
  ])
  if (problems.length > 0) throw new Error(`the logger reported problems while generating: ${problems.join('; ')}`)
  const end = Math.max(...results.map((r) => r.result.end))
  // The newest file of each service was last written at the last record's time, as in production
  // (its real mtime would be now, hours after the simulated records).
  const last = new Date(end + 1000)
  for (const name of readdirSync(logs)) if (name.endsWith('.log')) utimesSync(join(logs, name), last, last)
  const expected = { trace: 0, text: 0, window: 0 }
  for (const r of results) for (const key of Object.keys(expected)) expected[key] += r.result.counts[key]
  const manifest = {
    spec,
    expected,
    lines: spec.linesPerShare * SHARES.length,
    end,
    generatedIn: Math.round((performance.now() - began) / 1000),
  }
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return { ...manifest, dir, logs }
}

/** The files of the set, and their sizes, for the other tools (which get the list on the command line). */
export function listFiles(logs) {
  const files = readdirSync(logs)
    .filter((name) => /\.log(\.gz)?$/.test(name))
    .sort()
    .map((name) => join(logs, name))
  let gz = 0
  let plain = 0
  for (const file of files) {
    const size = statSync(file).size
    if (file.endsWith('.gz')) gz += size
    else plain += size
  }
  return { files, gzBytes: gz, plainBytes: plain, gzFiles: files.filter((f) => f.endsWith('.gz')).length }
}
