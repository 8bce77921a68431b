import { context, trace } from '@opentelemetry/api'
import { logs, SeverityNumber } from '@opentelemetry/api-logs'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { hrTimeToMilliseconds } from '@opentelemetry/core'
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  type LogRecordProcessor,
  type SdkLogRecord,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs'
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { LoggingError } from '../src/errors.js'
import { type Logger, openLogger } from '../src/logger.js'
import { allRecords, tempDir } from './helpers/files.js'

// A real OpenTelemetry SDK, registered the way an app does it: tracing with the AsyncLocalStorage
// context manager, and a LoggerProvider exporting to memory.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
trace.setGlobalTracerProvider(new BasicTracerProvider())
const exporter = new InMemoryLogRecordExporter()
// Throws on emit while `failing.on`: stands for a broken processor or exporter in the app's SDK.
const failing = { on: false }
const thrower: LogRecordProcessor = {
  onEmit: () => {
    if (failing.on) throw new Error('processor broke')
  },
  forceFlush: async () => {},
  shutdown: async () => {},
}

const open = (options: Partial<Parameters<typeof openLogger>[0]> = {}) =>
  openLogger(
    { service: 'orders', openTelemetryLogs: true, file: { dir: tempDir() }, ...options },
    { handleExit: false },
  )

let createdBeforeProvider: Logger
beforeAll(() => {
  createdBeforeProvider = open()
  logs.setGlobalLoggerProvider(
    new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter }), thrower] }),
  )
})
afterEach(() => {
  exporter.reset()
  failing.on = false
  vi.restoreAllMocks()
})

const emitted = (): SdkLogRecord[] => exporter.getFinishedLogRecords() as SdkLogRecord[]

describe('openTelemetryLogs', () => {
  it('hands each record over with severity, body, attributes, time and the active span', async () => {
    const dir = tempDir()
    const log = openLogger(
      { service: 'orders', level: 'trace', openTelemetryLogs: true, file: { dir }, base: { region: 'eu' } },
      { handleExit: false },
    )
    const child = log.child({ orderId: 'o-1' })
    const span = trace.getTracer('test').startSpan('checkout')
    context.with(trace.setSpan(context.active(), span), () => {
      child.info({ amount: 42.5, items: [{ sku: 'a', qty: 2 }], when: new Date(0) }, 'order %s', 'created')
    })
    span.end()
    await log.close()

    const [record] = emitted()
    const [line] = allRecords(dir, 'orders')
    expect(emitted()).toHaveLength(1)
    expect(record?.severityNumber).toBe(SeverityNumber.INFO)
    expect(record?.severityText).toBe('info')
    expect(record?.body).toBe('order created')
    expect(record?.attributes).toEqual({
      region: 'eu',
      orderId: 'o-1',
      amount: 42.5,
      items: [{ sku: 'a', qty: 2 }],
      when: '1970-01-01T00:00:00.000Z',
    })
    expect(record && hrTimeToMilliseconds(record.hrTime)).toBe(line?.time)
    expect(record?.spanContext?.traceId).toBe(span.spanContext().traceId)
    expect(record?.spanContext?.spanId).toBe(span.spanContext().spanId)
    expect(line).toMatchObject({ trace_id: span.spanContext().traceId, orderId: 'o-1', msg: 'order created' })
    expect(record?.instrumentationScope.name).toBe('@backplane/logging')
  })

  it('maps every pino level to the OpenTelemetry severity', async () => {
    const log = open({ level: 'trace' })
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) log[level](level)
    await log.close()
    expect(emitted().map((r) => [r.body, r.severityNumber, r.severityText])).toEqual([
      ['trace', 1, 'trace'],
      ['debug', 5, 'debug'],
      ['info', 9, 'info'],
      ['warn', 13, 'warn'],
      ['error', 17, 'error'],
      ['fatal', 21, 'fatal'],
    ])
  })

  it('turns an error into exception.type, exception.message and exception.stacktrace', async () => {
    const log = open()
    const error = Object.assign(new TypeError('card declined'), { code: 'E_CARD' })
    log.error(error)
    log.warn({ err: error, orderId: 'o-2' }, 'retrying')
    await log.close()
    const [alone, withFields] = emitted()
    expect(alone?.body).toBe('card declined')
    expect(alone?.attributes).toEqual({
      'exception.type': 'TypeError',
      'exception.message': 'card declined',
      'exception.stacktrace': error.stack,
      err: { code: 'E_CARD' },
    })
    expect(withFields?.body).toBe('retrying')
    expect(withFields?.attributes).toMatchObject({ orderId: 'o-2', 'exception.type': 'TypeError' })
  })

  it('keeps redacted fields out of the records, as out of the file', async () => {
    const dir = tempDir()
    const log = openLogger(
      { service: 'orders', openTelemetryLogs: true, file: { dir }, redact: ['card.number'] },
      { handleExit: false },
    )
    const span = trace.getTracer('test').startSpan('pay')
    context.with(trace.setSpan(context.active(), span), () => {
      log.child({ orderId: 'o-3' }).info({ card: { number: '4111', brand: 'visa' } }, 'charging')
    })
    span.end()
    await log.close()
    const [record] = emitted()
    expect(record?.attributes).toEqual({ orderId: 'o-3', card: { number: '[Redacted]', brand: 'visa' } })
    expect(record?.body).toBe('charging')
    expect(record?.spanContext?.spanId).toBe(span.spanContext().spanId)
    expect(allRecords(dir, 'orders')[0]).toMatchObject({ card: { number: '[Redacted]' } })
  })

  it('works for a logger created before the app registered its LoggerProvider', async () => {
    createdBeforeProvider.info({ late: true }, 'registered later')
    await createdBeforeProvider.close()
    expect(emitted().map((r) => [r.body, r.attributes])).toEqual([['registered later', { late: true }]])
  })

  it('loses no line in the file when the SDK throws, and says so once on stderr', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    const dir = tempDir()
    const log = openLogger({ service: 'orders', openTelemetryLogs: true, file: { dir } }, { handleExit: false })
    failing.on = true
    for (let i = 0; i < 50; i++) log.info({ i }, 'kept')
    await log.close()
    expect(allRecords(dir, 'orders').map((r) => r.i)).toEqual([...Array(50).keys()])
    const warnings = stderr.mock.calls.map(([text]) => String(text)).filter((t) => t.includes('OpenTelemetry Logs'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('processor broke')
  })

  it('hands nothing over when the option is off', async () => {
    const dir = tempDir()
    const log = openLogger({ service: 'orders', file: { dir } }, { handleExit: false })
    log.info('only in the file')
    await log.close()
    expect(allRecords(dir, 'orders')).toHaveLength(1)
    expect(emitted()).toEqual([])
  })

  it('without @opentelemetry/api-logs, throws LOGGING_LOGS_API_MISSING saying what to install', () => {
    const missing = Object.assign(new Error("Cannot find module '@opentelemetry/api-logs'"), {
      code: 'MODULE_NOT_FOUND',
    })
    const attempt = () =>
      openLogger(
        { service: 'orders', openTelemetryLogs: { loggerName: 'orders' }, file: { dir: tempDir() } },
        {
          handleExit: false,
          loadLogsApi: () => {
            throw missing
          },
        },
      )
    expect(attempt).toThrow(LoggingError)
    try {
      attempt()
    } catch (error) {
      expect((error as LoggingError).code).toBe('LOGGING_LOGS_API_MISSING')
      expect((error as LoggingError).message).toContain('npm install @opentelemetry/api-logs')
      expect((error as LoggingError).cause).toBe(missing)
    }
  })

  it('hands records to a logger without enabled() (an older API or SDK), or whose enabled() throws', async () => {
    for (const extra of [
      {},
      {
        enabled: () => {
          throw new TypeError('this.delegate.enabled is not a function')
        },
      },
    ]) {
      const records: unknown[] = []
      const log = openLogger(
        { service: 'orders', openTelemetryLogs: true, file: { dir: tempDir() } },
        {
          handleExit: false,
          loadLogsApi: () => ({
            logs: { getLogger: () => ({ emit: (r: unknown) => void records.push(r), ...extra }) as never },
          }),
        },
      )
      log.info('one')
      log.warn('two')
      await log.close()
      expect(records.map((r) => (r as { body: unknown }).body)).toEqual(['one', 'two'])
    }
  })

  it('names the instrumentation scope after loggerName, and refuses unknown settings', async () => {
    const log = open({ openTelemetryLogs: { loggerName: 'orders-app' } })
    log.info('scoped')
    await log.close()
    expect(emitted()[0]?.instrumentationScope.name).toBe('orders-app')
    expect(() => open({ openTelemetryLogs: { name: 'x' } as never })).toThrow(/openTelemetryLogs/)
  })
})
