type LogMethod = (obj: object | string, msg?: string, ...args: unknown[]) => void

/** The subset of pino's logger the packages call: pass a pino logger, or anything shaped like one. */
export interface LoggerLike {
  debug: LogMethod
  info: LogMethod
  warn: LogMethod
  error: LogMethod
}

const noop = () => {}

export const silentLogger: LoggerLike = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop })

export function isLogger(value: unknown): value is LoggerLike {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return ['debug', 'info', 'warn', 'error'].every((level) => typeof v[level] === 'function')
}
