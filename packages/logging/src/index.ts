export { activeTraceFragment } from './correlation.js'
export { LoggingError, type LoggingErrorCode } from './errors.js'
export {
  formatLogFileName,
  type LogFileName,
  type LogFileOnDisk,
  listLogFiles,
  parseLogFileName,
} from './file-names.js'
export { fastifyLogging } from './http/fastify.js'
export { httpLogging, withHttpLogging } from './http/node.js'
export type { HttpLoggingOptions } from './http/request-context.js'
export { createLogger, type Logger } from './logger.js'
export type { CreateLoggerOptions, RollingFileOptions } from './options.js'
export { createRollingFile, type RollingFile, type RollingFileEvents } from './rolling-file.js'
export { collectTrace, type LogRecord, type SearchOptions, type SearchWarning, searchLogs } from './search.js'
export { SearchError, type SearchErrorCode, type SearchIssue } from './search-error.js'
