import { type Context, context } from '@opentelemetry/api'
import type { AnyValue, AnyValueMap, LogRecord, Logger as OtelLogger, SeverityNumber } from '@opentelemetry/api-logs'
import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino'
import { addException, severityNumberOf, timestampOf, toAnyValue } from './log-record.js'
import { type LogsApi, packageVersion } from './logs-api.js'
import { instruments } from './metrics.js'

export interface LogsHandOffOptions {
  /** Instrumentation scope name of the records. */
  loggerName: string
  messageKey: string
  errorKey: string
  /**
   * Build records from the written line instead of the logged object: needed when something
   * changes the line that the object does not show (redaction, formatters.log, a streamWrite hook).
   */
  fromLine: boolean
  /** Correlation fields are spliced into the line: they are the record's context, not attributes. */
  correlation: boolean
}

/** What pino puts on a destination flagged with `needsMetadataGsym` before each write. */
interface Metadata {
  lastLevel: number
  lastObj: Record<string, unknown>
  lastMsg: unknown
  lastTime: string
  lastLogger: PinoLogger
}

type Serializer = (value: unknown) => unknown
const { chindingsSym, serializersSym, needsMetadataGsym } = pino.symbols
// Resource attributes in OpenTelemetry (service.name, process.pid, host.name): the SDK's resource has them.
const BASE_FIELDS = ['pid', 'hostname', 'service.name']
const CORRELATION_FIELDS = ['trace_id', 'span_id', 'trace_flags']

/**
 * Wraps the logger's destination so that each line, once written, is also handed to the
 * OpenTelemetry Logs API as a record. pino hands such a destination the level, object and
 * message of the line it writes (its "metadata" protocol, as for pino.multistream), so the
 * record is built from them without parsing the line back. The record is emitted in the caller's
 * context, so the SDK attaches the active span. The line goes first, and a hand-off that throws
 * is counted and reported once: it never costs a line in the file.
 */
export function logsHandOff(
  api: LogsApi,
  options: LogsHandOffOptions,
): (destination: DestinationStream) => DestinationStream {
  const otelLogger = api.logs.getLogger(options.loggerName, packageVersion())
  const skipped = new Set([
    options.messageKey,
    'level',
    'time',
    ...BASE_FIELDS,
    ...(options.correlation ? CORRELATION_FIELDS : []),
  ])
  const build = options.fromLine
    ? (meta: Metadata, line: string) => fromLine(meta, line, options, skipped)
    : (meta: Metadata) => fromObject(meta, options)
  let reported = false
  // Severities the logger has taken once. Without a provider the API's no-op logger says no to
  // each, so no record is built; once one is taken, emit's own check is enough (asking twice per
  // record costs the SDK's check again).
  const taken: boolean[] = []

  function handOff(meta: Metadata, line: string): void {
    try {
      const severityNumber = severityNumberOf(meta.lastLevel) as SeverityNumber
      const active = context.active()
      if (taken[severityNumber] !== true) {
        if (!isEnabled(otelLogger, severityNumber, active)) return
        taken[severityNumber] = true
      }
      const record = build(meta, line)
      record.severityNumber = severityNumber
      record.context = active
      otelLogger.emit(record)
    } catch (error) {
      instruments().otelLogsFailed.add(1)
      if (reported) return
      reported = true
      process.stderr.write(
        `@backplane/logging: handing a record to the OpenTelemetry Logs API failed (${(error as Error)?.message ?? error}); the files are not affected, later failures are only counted\n`,
      )
    }
  }

  return (destination) => {
    const withMetadata = {
      [needsMetadataGsym]: true as const,
      lastLevel: 0,
      lastObj: {},
      lastMsg: undefined,
      lastTime: '',
      lastLogger: undefined as unknown as PinoLogger,
      write(line: string) {
        destination.write(line)
        handOff(withMetadata, line)
      },
    }
    return withMetadata as unknown as DestinationStream
  }
}

/**
 * `Logger.enabled` came to the Logs API after 0.200, and an older SDK behind a newer API lacks it
 * (the API's proxy then throws): either way, ask emit instead of losing every record.
 */
function isEnabled(logger: OtelLogger, severityNumber: SeverityNumber, active: Context): boolean {
  if (typeof logger.enabled !== 'function') return true
  try {
    return logger.enabled({ severityNumber, context: active }) !== false
  } catch {
    return true
  }
}

function base(meta: Metadata): LogRecord {
  const level = meta.lastLevel
  const timestamp = timestampOf(meta.lastTime)
  return {
    severityText: meta.lastLogger.levels.labels[level] ?? String(level),
    ...(timestamp === undefined ? {} : { timestamp }),
  }
}

function fromObject(meta: Metadata, options: LogsHandOffOptions): LogRecord {
  const { lastObj: obj, lastLogger: logger } = meta
  const serializers =
    (logger as unknown as Record<symbol, Record<string, Serializer | undefined>>)[serializersSym] ?? {}
  const attributes: AnyValueMap = { ...bindingsOf(logger) }
  const { messageKey, errorKey } = options
  for (const key in obj) {
    if (key === messageKey || !Object.hasOwn(obj, key)) continue
    let value = obj[key]
    if (value === undefined) continue
    const serializer = serializers[key] ?? (key === errorKey ? serializers.err : undefined)
    if (serializer) value = serializer(value)
    if (key === errorKey && addException(attributes, key, value)) continue
    const any = toAnyValue(value)
    if (any !== undefined) attributes[key] = any
  }
  const record = base(meta)
  const body = meta.lastMsg ?? obj[messageKey]
  if (body !== undefined) record.body = toAnyValue(body)
  record.attributes = attributes
  return record
}

function fromLine(meta: Metadata, line: string, options: LogsHandOffOptions, skipped: Set<string>): LogRecord {
  const fields = JSON.parse(line) as Record<string, AnyValue>
  const attributes: AnyValueMap = {}
  for (const key in fields) {
    if (skipped.has(key)) continue
    const value = fields[key]
    if (key === options.errorKey && addException(attributes, key, value)) continue
    attributes[key] = value
  }
  const record = base(meta)
  const body = fields[options.messageKey]
  if (body !== undefined) record.body = body
  record.attributes = attributes
  return record
}

// Child bindings are kept serialized by pino (and already redacted): parsed once per logger
// and bindings, not per line.
const bindingsCache = new WeakMap<object, { chindings: string; fields: AnyValueMap }>()

function bindingsOf(logger: PinoLogger): AnyValueMap {
  const chindings = ((logger as unknown as Record<symbol, unknown>)[chindingsSym] as string | undefined) ?? ''
  const cached = bindingsCache.get(logger)
  if (cached !== undefined && cached.chindings === chindings) return cached.fields
  const fields = chindings === '' ? {} : (JSON.parse(`{${chindings.slice(1)}}`) as AnyValueMap)
  for (const field of BASE_FIELDS) delete fields[field]
  bindingsCache.set(logger, { chindings, fields })
  return fields
}
