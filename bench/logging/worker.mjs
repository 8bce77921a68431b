// One measurement in its own process, so that peak RSS belongs to one variant:
//   node bench/logging/worker.mjs <variant> <lines> <dir>
// Logs <lines> lines into files under <dir>, yielding to the event loop every 1,000 lines (sustained
// load, as in a service), stops the clock once every line has been handed to the OS, then closes
// and waits for background work (gzip of rotated files), and prints one JSON line on stdout.
// The parent (run.mjs) counts what actually reached the files.
import { once } from 'node:events'
import { join } from 'node:path'

const [variant, linesArg, dir] = process.argv.slice(2)
const N = Number(linesArg)
if (!variant || !Number.isInteger(N) || N <= 0 || !dir) {
  process.stderr.write('usage: node bench/logging/worker.mjs <variant> <lines> <dir>\n')
  process.exit(2)
}

// Fixed ids: the parent checks that lines of the correlated variants carry exactly these.
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN_ID = '00f067aa0ba902b7'

const BATCH = 1000
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** CPU time of the whole process (main thread and libuv's pool: gzip included) since `from`. */
const cpuMsSince = (from) => {
  const { user, system } = process.cpuUsage(from)
  return (user + system) / 1000
}

/** Calls `logOne(i)` N times, yielding every BATCH lines so async destinations can write. */
async function loop(logOne) {
  for (let i = 0; i < N; i++) {
    logOne(i)
    if (i % BATCH === BATCH - 1) await yieldToLoop()
  }
}

/** Resolves once a sonic-boom stream holds nothing that is not yet handed to the OS (no fsync). */
async function sonicDrained(dest) {
  while (dest._writing || dest._len > 0) await sleep(1)
}

async function pinoVariant(makeDestination) {
  const { pino } = await import('pino')
  const dest = await makeDestination(pino)
  if (dest.fd < 0) await once(dest, 'ready')
  const log = pino(dest)
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  await loop((i) => log.info({ i, orderId: 'o-123', amount: 42.5 }, 'order accepted'))
  await sonicDrained(dest)
  const elapsedMs = performance.now() - start
  const cpuMs = cpuMsSince(cpu0)
  const closeStart = performance.now()
  const closed = once(dest, 'close')
  dest.end()
  await closed
  return { elapsedMs, cpuMs, closeMs: performance.now() - closeStart }
}

/**
 * An app's OpenTelemetry logs pipeline whose exporter discards: what the hand-off and the SDK
 * cost on the logging thread, without a collector's network in the figures. Counts what the SDK
 * exported (the rest its batch processor dropped when its queue was full).
 */
async function otelLogsPipeline() {
  const { logs } = await import('@opentelemetry/api-logs')
  const { LoggerProvider, BatchLogRecordProcessor } = await import('@opentelemetry/sdk-logs')
  let exported = 0
  const exporter = {
    export(records, done) {
      exported += records.length
      done({ code: 0 })
    },
    shutdown: async () => {},
  }
  const provider = new LoggerProvider({ processors: [new BatchLogRecordProcessor({ exporter })] })
  logs.setGlobalLoggerProvider(provider)
  return {
    async close() {
      await provider.shutdown()
      return exported
    },
  }
}

async function backplaneVariant({ correlation, inSpan, naiveMixin, staticFields, otelLogs }) {
  const { context, trace } = await import('@opentelemetry/api')
  const { installTraceContext } = await import('@backplane/logging/trace-context')
  const { createLogger } = await import('@backplane/logging')
  // Registered in every @backplane variant (a traced service has it anyway), so that the
  // b / b0 / b1 differences are the cost of correlation, not of AsyncLocalStorage.
  installTraceContext()
  const pipeline = otelLogs === 'sdk' ? await otelLogsPipeline() : undefined
  const events = { rotate: 0, compress: 0, drop: 0, fallback: [], error: [] }
  const pinoOptions = naiveMixin
    ? {
        mixin() {
          const span = trace.getSpan(context.active())
          if (!span) return {}
          const sc = span.spanContext()
          return {
            trace_id: sc.traceId,
            span_id: sc.spanId,
            trace_flags: `0${(sc.traceFlags & 0xff).toString(16)}`.slice(-2),
          }
        },
      }
    : undefined
  const log = createLogger({
    service: 'bench',
    file: { dir, size: '10M', interval: '1d', compress: 'gzip' },
    handleExit: false,
    correlation,
    ...(otelLogs ? { openTelemetryLogs: true } : {}),
    ...(pinoOptions ? { pino: pinoOptions } : {}),
    ...(staticFields ? { base: { trace_id: TRACE_ID, span_id: SPAN_ID, trace_flags: '01' } } : {}),
  })
  const ev = log.files?.events
  ev?.on('rotate', () => events.rotate++)
  ev?.on('compress', () => events.compress++)
  ev?.on('drop', ({ lines }) => (events.drop += lines))
  ev?.on('fallback', (e) => events.fallback.push(String(e?.message ?? e)))
  ev?.on('error', (e) => events.error.push(String(e?.message ?? e)))

  let cpuMs = 0
  let gzipBacklogAtFlush = 0
  const body = async () => {
    const start = performance.now()
    const cpu0 = process.cpuUsage()
    await loop((i) => log.info({ i, orderId: 'o-123', amount: 42.5 }, 'order accepted'))
    await log.flush()
    cpuMs = cpuMsSince(cpu0)
    gzipBacklogAtFlush = events.rotate - events.compress
    return performance.now() - start
  }
  const elapsedMs = inSpan
    ? await context.with(
        trace.setSpan(context.active(), trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 })),
        body,
      )
    : await body()
  const closeStart = performance.now()
  await log.close()
  const closeMs = performance.now() - closeStart
  const otelExported = await pipeline?.close()
  return {
    elapsedMs,
    cpuMs,
    closeMs,
    ...(otelExported === undefined ? {} : { otelExported }),
    gzip: { rotated: events.rotate, backlogAtFlush: gzipBacklogAtFlush },
    events,
    ...(inSpan && (correlation || naiveMixin || staticFields) ? { traceId: TRACE_ID } : {}),
  }
}

async function winstonVariant() {
  const { default: winston } = await import('winston')
  const { default: DailyRotateFile } = await import('winston-daily-rotate-file')
  const transport = new DailyRotateFile({
    dirname: dir,
    filename: 'app-%DATE%.log',
    maxSize: '10m',
    zippedArchive: true,
    // The audit file goes next to the logs dir, not in it: only log lines are counted there.
    auditFile: join(dir, '..', 'winston-audit.json'),
  })
  const events = { rotate: 0, archive: 0, error: [] }
  transport.on('rotate', () => events.rotate++)
  transport.on('archive', () => events.archive++)
  transport.on('error', (e) => events.error.push(String(e?.message ?? e)))
  const log = winston.createLogger({ level: 'info', format: winston.format.json(), transports: [transport] })
  log.on('error', (e) => events.error.push(String(e?.message ?? e)))

  const start = performance.now()
  const cpu0 = process.cpuUsage()
  await loop((i) => log.info('order accepted', { i, orderId: 'o-123', amount: 42.5 }))
  // The logger's 'finish' only means winston handed every line to the transport, which writes
  // to its file stream without waiting: the lines are in the file once that stream has ended.
  const finished = once(log, 'finish')
  log.end()
  await finished
  await new Promise((resolve) => transport.logStream.end(resolve))
  const elapsedMs = performance.now() - start
  const cpuMs = cpuMsSince(cpu0)
  const gzip = { rotated: events.rotate, backlogAtFlush: events.rotate - events.archive }
  // Rotated files are gzipped in the background: wait for them (bounded) before exiting.
  const closeStart = performance.now()
  const deadline = Date.now() + 15_000
  while (events.archive + events.error.length < events.rotate && Date.now() < deadline) await sleep(5)
  return { elapsedMs, cpuMs, closeMs: performance.now() - closeStart, gzip, events }
}

const variants = {
  // (a) the anchor: raw pino to an async sonic-boom file destination
  a: () => pinoVariant((pino) => pino.destination({ dest: join(dir, 'raw.log'), sync: false })),
  // (b) @backplane/logging inside an active span, correlation on (the default)
  b: () => backplaneVariant({ correlation: true, inSpan: true }),
  // (b3) (b) plus the OpenTelemetry Logs hand-off into an SDK LoggerProvider (batch processor,
  // discarding exporter): (b3)/(b) is what the hand-off costs the file path
  b3: () => backplaneVariant({ correlation: true, inSpan: true, otelLogs: 'sdk' }),
  // (b4) (b) with the option on but no LoggerProvider registered: what the option costs unused
  b4: () => backplaneVariant({ correlation: true, inSpan: true, otelLogs: 'none' }),
  // (b0) correlation off, in the same span: (b)/(b0) is the whole cost of correlation
  b0: () => backplaneVariant({ correlation: false, inSpan: true }),
  // (b2) correlation off, the same fields written as static bindings: same bytes, no lookup
  b2: () => backplaneVariant({ correlation: false, inSpan: true, staticFields: true }),
  // (b1) correlation off, a naive pino mixin reading the active span instead, inside a span
  b1: () => backplaneVariant({ correlation: false, inSpan: true, naiveMixin: true }),
  // (c) pino-roll used directly as pino's destination
  c: () =>
    pinoVariant(async () => {
      const { default: pinoRoll } = await import('pino-roll')
      return pinoRoll({ file: join(dir, 'app'), size: '10m', frequency: 'daily', mkdir: true })
    }),
  // (d) winston + winston-daily-rotate-file
  d: () => winstonVariant(),
}

if (!variants[variant]) {
  process.stderr.write(`unknown variant ${variant}: expected one of ${Object.keys(variants).join(', ')}\n`)
  process.exit(2)
}

const result = await variants[variant]()
const maxRssMB = process.resourceUsage().maxRSS / 1024
process.stdout.write(`${JSON.stringify({ variant, lines: N, ...result, maxRssMB })}\n`)
