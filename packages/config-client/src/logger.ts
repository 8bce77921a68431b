/**
 * The logger this package writes to: the method shape of pino (`log.warn({ ...fields }, 'message')`),
 * so a pino logger, a pino child or anything with the same four methods fits. The package never
 * imports pino itself; without a logger it is silent.
 *
 * Narrower than the shared `LoggerLike` on purpose: this package always passes fields and a
 * message, so a logger typed `(fields, message) => void` fits here (it would not fit LoggerLike).
 */
export interface ConfigLogger {
  debug(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
  warn(fields: Record<string, unknown>, message: string): void
  error(fields: Record<string, unknown>, message: string): void
}

/** The default logger (drops everything) and the check for the four methods. */
export { isLogger, silentLogger } from '@backplane/internal'

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
