import type { AnyValue, AnyValueMap } from '@opentelemetry/api-logs'

/**
 * OpenTelemetry severity of a pino level: the highest standard level at or below it (pino's
 * trace 10 … fatal 60 become TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21; a custom
 * level 35 is INFO).
 */
export function severityNumberOf(level: number): number {
  if (level < 20) return 1
  if (level < 30) return 5
  if (level < 40) return 9
  if (level < 50) return 13
  if (level < 60) return 17
  return 21
}

/** Epoch ms of pino's time fragment (`1763852280123`, or `"2026-…"` from isoTime), else undefined. */
export function timestampOf(time: string): number | undefined {
  if (time === '') return undefined
  const ms = time.charCodeAt(0) === 34 /* " */ ? Date.parse(time.slice(1, -1)) : Number(time)
  return Number.isFinite(ms) ? ms : undefined
}

const EXCEPTION_FIELDS = new Set(['type', 'message', 'stack'])

/**
 * Puts a serialized error (pino's `{ type, message, stack, … }`) into `exception.*` attributes,
 * its other fields (`code`, …) under `key`. False when `value` is not an error.
 */
export function addException(attributes: AnyValueMap, key: string, value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const error = value as Record<string, unknown>
  if (typeof error.message !== 'string' && typeof error.stack !== 'string') return false
  if (typeof error.type === 'string') attributes['exception.type'] = error.type
  if (typeof error.message === 'string') attributes['exception.message'] = error.message
  if (typeof error.stack === 'string') attributes['exception.stacktrace'] = error.stack
  let rest: AnyValueMap | undefined
  for (const field in error) {
    if (EXCEPTION_FIELDS.has(field)) continue
    const any = toAnyValue(error[field])
    if (any === undefined) continue
    rest ??= {}
    rest[field] = any
  }
  if (rest) attributes[key] = rest
  return true
}

/**
 * A field value as the Logs API takes it, the way the line in the file shows it: plain data
 * as is, anything else (a Date, a class instance) through its JSON form; undefined when the line
 * leaves the field out too (functions, undefined).
 */
export function toAnyValue(value: unknown): AnyValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return Number.isFinite(value) ? value : null
    case 'bigint':
      return value.toString()
    case 'object':
      return value === null || isPlainData(value, 0) ? (value as AnyValue) : jsonCopy(value)
    default:
      return undefined
  }
}

const MAX_DEPTH = 8

function isPlainData(value: unknown, depth: number): boolean {
  if (value === null || value === undefined) return true
  if (typeof value !== 'object') {
    return (
      typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
    )
  }
  if (depth > MAX_DEPTH) return false
  if (Array.isArray(value)) return value.every((item) => isPlainData(item, depth + 1))
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in value) if (!isPlainData((value as Record<string, unknown>)[key], depth + 1)) return false
  return true
}

function jsonCopy(value: object): AnyValue | undefined {
  try {
    const text = JSON.stringify(value)
    return text === undefined ? undefined : (JSON.parse(text) as AnyValue)
  } catch {
    // A cycle or a throwing toJSON: the line in the file has pino's own rendering of it.
    return undefined
  }
}
