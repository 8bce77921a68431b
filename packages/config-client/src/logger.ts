/**
 * The logger this package writes to: the method shape of pino (`log.warn({ ...fields }, 'message')`),
 * so a pino logger, a pino child or anything with the same four methods fits. The package never
 * imports pino itself; without a logger it is silent.
 */
export interface ConfigLogger {
  debug(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

const noop = () => {}

/** The default logger: drops everything. */
export const silentLogger: ConfigLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop })

/** True for an object with the four methods of ConfigLogger. */
export function isLogger(value: unknown): value is ConfigLogger {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return ['debug', 'info', 'warn', 'error'].every((m) => typeof v[m] === 'function')
}

/** Calls the logger, never letting a broken logger take the caller down. */
export function safeLog(
  logger: ConfigLogger,
  level: keyof ConfigLogger,
  fields: Record<string, unknown>,
  message: string,
): void {
  try {
    logger[level](fields, message)
  } catch {
    // A logger that throws must not stop config updates; there is nowhere left to report it.
  }
}
