import { hostname } from 'node:os'
import { type DestinationStream, type LoggerOptions, type Logger as PinoLogger, pino } from 'pino'
import { addTraceFields } from './correlation.js'
import { type LogsApiLoader, loadLogsApi } from './logs-api.js'
import { type CreateLoggerOptions, loggerOptionsSchema, parseOptions, type ResolvedLoggerOptions } from './options.js'
import { logsHandOff } from './otel-logs.js'
import { openRollingFile, type RollingFile, type RollingFileInternals } from './rolling-file.js'
import { type FlushableSink, registerSink, unregisterSink } from './shutdown.js'

/** A pino logger (levels, child loggers, redaction: the whole pino API) that can be flushed and closed. */
export interface Logger extends PinoLogger {
  /** Resolves once every line logged before the call is written; the callback form also works. */
  flush(callback?: (error?: Error) => void): Promise<void>
  /** Flushes and closes the files; lines logged afterwards go to stderr. */
  close(): Promise<void>
  /** The rolling files, when `file` was given: their events and the current file. */
  readonly files: RollingFile | undefined
}

interface Sink extends FlushableSink {
  write(line: string): unknown
  close(): Promise<void>
}

function stdoutSink(handleExit: boolean): Sink {
  const stream = pino.destination({ dest: 1, sync: false })
  const sink: Sink = {
    write: (line) => stream.write(line),
    flush: () => new Promise<void>((resolve) => stream.flush(() => resolve())),
    flushSync: () => stream.flushSync(),
    close: async () => {
      await sink.flush()
      if (handleExit) unregisterSink(sink)
    },
  }
  if (handleExit) registerSink(sink)
  return sink
}

function toDestination(sinks: Sink[]): DestinationStream {
  if (sinks.length === 1) {
    const [only] = sinks as [Sink]
    return { write: (line: string) => void only.write(line) }
  }
  return {
    write: (line: string) => {
      for (const sink of sinks) sink.write(line)
    },
  }
}

/**
 * Creates the logger. Options are checked here: anything unknown or malformed throws a
 * LoggingError naming each problem, and so does a log directory this process cannot write.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  return openLogger(options)
}

/** Seams for tests; not part of the public API. */
export interface LoggerInternals extends RollingFileInternals {
  loadLogsApi?: LogsApiLoader
}

/** The OpenTelemetry Logs hand-off around the destination, when `openTelemetryLogs` is on. */
function withLogsHandOff(
  opts: ResolvedLoggerOptions,
  pinoOptions: LoggerOptions,
  internals: LoggerInternals,
): (destination: DestinationStream) => DestinationStream {
  const setting = opts.openTelemetryLogs
  if (setting === false) return (destination) => destination
  const api = loadLogsApi(internals.loadLogsApi)
  return logsHandOff(api, {
    loggerName: (setting === true ? undefined : setting.loggerName) ?? '@backplane/logging',
    messageKey: pinoOptions.messageKey ?? 'msg',
    errorKey: pinoOptions.errorKey ?? 'err',
    // The object pino hands over is the line before these touch it.
    fromLine: Boolean(pinoOptions.redact || pinoOptions.formatters?.log || pinoOptions.hooks?.streamWrite),
    correlation: opts.correlation,
  })
}

export function openLogger(options: CreateLoggerOptions, internals: LoggerInternals = {}): Logger {
  const opts = parseOptions(loggerOptionsSchema, options, 'logger')
  const userOptions = (opts.pino ?? {}) as LoggerOptions
  // Before any file is opened: a missing peer must not leave a registered, unclosed file behind.
  const handOff = withLogsHandOff(
    opts,
    { ...userOptions, ...(options.redact ? { redact: options.redact } : {}) },
    internals,
  )
  const handleExit = opts.handleExit && internals.handleExit !== false
  const files = options.file
    ? openRollingFile({ ...options.file, name: options.file.name ?? opts.service }, { ...internals, handleExit })
    : undefined
  const sinks: Sink[] = []
  if (files) sinks.push(files)
  if (opts.stdout ?? !files) sinks.push(stdoutSink(handleExit))

  const userStreamWrite = userOptions.hooks?.streamWrite
  const streamWrite = opts.correlation
    ? userStreamWrite
      ? (line: string) => addTraceFields(userStreamWrite(line))
      : addTraceFields
    : userStreamWrite
  const pinoOptions: LoggerOptions = {
    ...userOptions,
    level: opts.level,
    base: { pid: process.pid, hostname: hostname(), 'service.name': opts.service, ...opts.base },
    ...(options.redact ? { redact: options.redact } : {}),
    ...(options.serializers ? { serializers: options.serializers } : {}),
    hooks: { ...userOptions.hooks, ...(streamWrite ? { streamWrite } : {}) },
  }
  const logger = pino(pinoOptions, handOff(toDestination(sinks))) as unknown as Logger
  const flushAll = () => Promise.all(sinks.map((sink) => sink.flush())).then(() => {})
  Object.defineProperties(logger, {
    flush: {
      value: (callback?: (error?: Error) => void) => {
        const done = flushAll()
        return callback ? done.then(() => callback(), callback) : done
      },
    },
    close: { value: () => Promise.all(sinks.map((sink) => sink.close())).then(() => {}) },
    files: { value: files, enumerable: false },
  })
  return logger
}
