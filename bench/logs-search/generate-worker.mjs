// Writes one share of the data set through @backplane/logging itself (pino, rolling files by size,
// gzip of rolled files, trace correlation from the active span), with a simulated clock:
//   node bench/logs-search/generate-worker.mjs <json spec>
// Prints one JSON line: what it planted and how many lines each query must find in its share.
//
// The clock: Date.now is replaced before the logger exists, so pino's `time`, the file names and
// the rotation all read the simulated time, as they read the real one in a service. The logger
// writes asynchronously, so a file can be named a little later than the lines logged just before
// it was opened; the generator waits for the files every BATCH lines so that this lag stays under
// a second of simulated time, as it is in a real service (the search allows 5 s).

const spec = JSON.parse(process.argv[2] ?? '{}')
const { dir, services, lines, start, stepMs, seed, needles, window } = spec
if (!dir || !Array.isArray(services) || !(lines > 0)) {
  process.stderr.write('usage: node generate-worker.mjs \'{"dir":…,"services":[…],"lines":N,…}\'\n')
  process.exit(2)
}

let simNow = start
Date.now = () => simNow

const { context, trace } = await import('@opentelemetry/api')
const { installTraceContext } = await import('@backplane/logging/trace-context')
const { createLogger } = await import('@backplane/logging')
const { messageFor } = await import('./messages.mjs')

installTraceContext()

/** mulberry32: a small seeded generator, so the same spec always writes the same lines. */
function prng(s) {
  let a = s >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(seed)
const hex = (n) => {
  let s = ''
  while (s.length < n)
    s += Math.floor(random() * 0x100000000)
      .toString(16)
      .padStart(8, '0')
  return s.slice(0, n)
}

const BATCH = 64
const events = { error: [], fallback: [], drop: 0 }
const loggers = services.map((service, k) => {
  const log = createLogger({
    service,
    level: 'debug',
    file: { dir, size: '10M', interval: '1d', compress: 'gzip' },
    handleExit: false,
    base: { pid: 4000 + 97 * k + (seed % 89), hostname: `${service}-7f9c${k}` },
  })
  log.files?.events.on('error', (e) => events.error.push(String(e?.message ?? e)))
  log.files?.events.on('fallback', (e) => events.fallback.push(String(e?.message ?? e)))
  log.files?.events.on('drop', ({ lines: n }) => {
    events.drop += n
  })
  return log
})

// A request is a trace: a few lines in one service under one span, then the next request.
const spans = services.map(() => ({ left: 0, ctx: context.active() }))
function spanFor(k) {
  const s = spans[k]
  if (s.left <= 0) {
    s.left = 1 + Math.floor(random() * 6)
    // One line in seven is logged outside any request (startup, timers, consumers without context).
    const traced = random() < 6 / 7
    s.ctx = traced
      ? trace.setSpan(context.active(), trace.wrapSpanContext({ traceId: hex(32), spanId: hex(16), traceFlags: 1 }))
      : context.active()
  }
  s.left--
  return s.ctx
}

const LEVELS = ['debug', 'info', 'warn', 'error']
function levelFor() {
  const r = random()
  return r < 0.12 ? 0 : r < 0.955 ? 1 : r < 0.99 ? 2 : 3
}
const LEVEL_NUMBER = [20, 30, 40, 50]

const counts = { trace: 0, text: 0, window: 0 }
const plantTraceAt = start + needles.traceAt * lines * stepMs
const plantTextAt = needles.textAt.map((f) => start + f * lines * stepMs)
let tracePlanted = false
let textPlanted = 0

function plantTrace() {
  // One request through every service of this share, a few milliseconds apart.
  services.forEach((service, k) => {
    for (let j = 0; j < 3; j++) {
      const sc = { traceId: needles.traceId, spanId: hex(16), traceFlags: 1 }
      context.with(trace.setSpan(context.active(), trace.wrapSpanContext(sc)), () => {
        loggers[k].info({ orderId: `o-${hex(10)}`, step: j }, `${service} handled order step ${j}`)
      })
      count(30)
      counts.trace++
      simNow += 1
    }
  })
}

function plantText(k) {
  context.with(spanFor(k), () => {
    loggers[k].error({ page: hex(4), expected: hex(8), found: hex(8) }, `ledger ${needles.text} on replay`)
  })
  count(50)
  counts.text++
}

function count(level) {
  if (level >= 40 && simNow >= window.from && simNow < window.to) counts.window++
}

for (let i = 0; i < lines; i++) {
  simNow = start + Math.floor(i * stepMs + random() * stepMs)
  const k = Math.floor(random() * services.length)
  const level = levelFor()
  const { fields, msg } = messageFor(services[k], LEVELS[level], random, hex)
  context.with(spanFor(k), () => loggers[k][LEVELS[level]](fields, msg))
  count(LEVEL_NUMBER[level])
  if (!tracePlanted && simNow >= plantTraceAt) {
    tracePlanted = true
    plantTrace()
  }
  while (textPlanted < plantTextAt.length && simNow >= plantTextAt[textPlanted]) {
    plantText(textPlanted % services.length)
    textPlanted++
  }
  if (i % BATCH === BATCH - 1) await Promise.all(loggers.map((log) => log.flush()))
}
await Promise.all(loggers.map((log) => log.close()))
process.stdout.write(`${JSON.stringify({ counts, end: simNow, events })}\n`)
