import { createRequire } from 'node:module'
import { isModuleMissing } from '@backplane/internal'
import type { logs } from '@opentelemetry/api-logs'
import { LoggingError } from './errors.js'

/** The part of `@opentelemetry/api-logs` the hand-off uses. */
export interface LogsApi {
  logs: Pick<typeof logs, 'getLogger'>
}

/** Loads `@opentelemetry/api-logs`; the test seam for a missing install. */
export type LogsApiLoader = () => LogsApi

const PEER = '@opentelemetry/api-logs'

// createLogger is synchronous, so the optional peer is required, not imported: its published
// build is CommonJS, which `require` loads at once from ES modules and CommonJS alike, and a Node
// ESM import of it gets that same CommonJS module, so the app's SDK and this code share one API.
function requireFromHere(): NodeJS.Require {
  return createRequire(import.meta.url)
}

export const requireLogsApi: LogsApiLoader = () => requireFromHere()(PEER) as LogsApi

/** This package's version, for the instrumentation scope of the records. */
export function packageVersion(): string | undefined {
  try {
    return (requireFromHere()('@backplane/logging/package.json') as { version?: string }).version
  } catch {
    return undefined
  }
}

/** The Logs API, or LOGGING_LOGS_API_MISSING naming the package to install. */
export function loadLogsApi(load: LogsApiLoader = requireLogsApi): LogsApi {
  try {
    return load()
  } catch (error) {
    if (!isModuleMissing(error, PEER)) throw error
    throw new LoggingError(
      'LOGGING_LOGS_API_MISSING',
      `the openTelemetryLogs option needs the OpenTelemetry Logs API, which is not installed: npm install ${PEER}`,
      { cause: error },
    )
  }
}
