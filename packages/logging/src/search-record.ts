import { levelNumber } from './search-levels.js'
import type { LogRecord, PlannedFile, Query } from './search-types.js'

/** The line as a record, or undefined when it is not a JSON object. */
export function toLogRecord(raw: string, file: PlannedFile, lineNumber: number): LogRecord | undefined {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const record = value as Record<string, unknown>
  const serviceName = record['service.name']
  return {
    record,
    raw,
    file: file.path,
    lineNumber,
    time: epochMs(record.time),
    level: typeof record.level === 'string' || typeof record.level === 'number' ? levelNumber(record.level) : undefined,
    service: typeof serviceName === 'string' ? serviceName : file.service,
  }
}

function epochMs(time: unknown): number | undefined {
  if (typeof time === 'number') return Number.isFinite(time) ? time : undefined
  if (typeof time !== 'string') return undefined
  const ms = Date.parse(time)
  return Number.isNaN(ms) ? undefined : ms
}

/** The full check of a parsed record against every option. */
export function matches(entry: LogRecord, file: PlannedFile, query: Query): boolean {
  const { record } = entry
  if (query.traceId !== undefined && record.trace_id !== query.traceId) return false
  if (query.minLevel !== undefined && (entry.level === undefined || entry.level < query.minLevel)) return false
  if (query.since !== Number.NEGATIVE_INFINITY || query.until !== Number.POSITIVE_INFINITY) {
    if (entry.time === undefined || entry.time < query.since || entry.time >= query.until) return false
  }
  if (query.services && file.service === undefined && !query.services.has(entry.service ?? '')) return false
  if (query.grep && !(typeof record.msg === 'string' && query.grep(record.msg)) && !query.grep(entry.raw)) return false
  return true
}
