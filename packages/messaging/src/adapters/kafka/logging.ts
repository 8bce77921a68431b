import type { LoggerLike } from '@backplane/messaging'
import kafkajs, { type logCreator as LogCreator, type LogEntry, type logLevel as LogLevel } from 'kafkajs'
import type { KafkaOptions } from './options.js'

type LogMethod = 'error' | 'warn' | 'info' | 'debug'

export function kafkaLogLevel(options: KafkaOptions): LogLevel {
  const { logLevel } = kafkajs
  const name = options.logLevel ?? (options.logger ? 'info' : 'nothing')
  const levels = {
    nothing: logLevel.NOTHING,
    error: logLevel.ERROR,
    warn: logLevel.WARN,
    info: logLevel.INFO,
    debug: logLevel.DEBUG,
  }
  return levels[name]
}

function logMethod(level: LogLevel): LogMethod {
  const { logLevel } = kafkajs
  if (level === logLevel.ERROR) return 'error'
  if (level === logLevel.WARN) return 'warn'
  if (level === logLevel.INFO) return 'info'
  return 'debug'
}

export function kafkaLogCreator(logger: LoggerLike): LogCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, ...fields } = log
      logger[logMethod(level)]({ ...fields, system: 'kafka', kafkajs: namespace }, message)
    }
}
