import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { context, trace } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import { openLogger } from '../src/logger.js'
import { installTraceContext } from '../src/trace-context.js'
import { allRecords, tempDir } from './helpers/files.js'

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url))
const exec = promisify(execFile)

const spanA = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }
const spanB = { traceId: 'a3ce929d0e0e47364bf92f3577b34da6', spanId: '0ba902b700f067aa', traceFlags: 0 }

function inSpan<T>(ids: typeof spanA, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), trace.wrapSpanContext(ids)), fn)
}

describe('trace correlation without an SDK', () => {
  it('installTraceContext registers the context manager and W3C propagator once', () => {
    expect(installTraceContext()).toEqual({ contextManager: true, propagator: true })
    expect(installTraceContext()).toEqual({ contextManager: false, propagator: false })
  })

  it('adds trace_id, span_id and trace_flags of the active span, and nothing outside one', async () => {
    installTraceContext()
    const dir = tempDir()
    const log = openLogger({ service: 'orders', file: { dir } }, { handleExit: false })
    log.info('before')
    inSpan(spanA, () => log.info('a'))
    inSpan(spanB, () => log.child({ c: 1 }).info('b'))
    await inSpan(spanA, async () => {
      await new Promise((resolve) => setTimeout(resolve, 2))
      log.info('a again, after an await')
    })
    log.info('after')
    await log.close()
    const records = allRecords(dir, 'orders')
    const ids = records.map((r) => [r.msg, r.trace_id, r.span_id, r.trace_flags])
    expect(ids).toEqual([
      ['before', undefined, undefined, undefined],
      ['a', spanA.traceId, spanA.spanId, '01'],
      ['b', spanB.traceId, spanB.spanId, '00'],
      ['a again, after an await', spanA.traceId, spanA.spanId, '01'],
      ['after', undefined, undefined, undefined],
    ])
    expect(records.every((r) => r['service.name'] === 'orders')).toBe(true)
  })

  it('is off with correlation: false', async () => {
    const dir = tempDir()
    const log = openLogger({ service: 'plain', correlation: false, file: { dir } }, { handleExit: false })
    inSpan(spanA, () => log.info('a'))
    await log.close()
    expect(allRecords(dir, 'plain')[0]).not.toHaveProperty('trace_id')
  })
})

describe('correlation in ESM and CommonJS apps (built package)', () => {
  it.each([
    ['correlated-app.mjs', 'none', 'esm-app'],
    ['correlated-app.cjs', 'none', 'cjs-app'],
    ['correlated-app.mjs', 'sdk', 'esm-app'],
    ['correlated-app.cjs', 'sdk', 'cjs-app'],
  ])('%s with %s', async (app, mode, service) => {
    const dir = tempDir()
    const { stdout } = await exec(process.execPath, [join(fixtures, app), dir, mode])
    const spanContext = JSON.parse(stdout) as { traceId: string; spanId: string }
    const records = allRecords(dir, service)
    expect(records.map((r) => r.msg)).toEqual(['outside', 'inside', 'inside, after an await'])
    expect(records[0]).not.toHaveProperty('trace_id')
    for (const record of records.slice(1)) {
      expect(record).toMatchObject({
        trace_id: spanContext.traceId,
        span_id: spanContext.spanId,
        trace_flags: '01',
        'service.name': service,
      })
    }
    expect(spanContext.traceId).toMatch(/^[0-9a-f]{32}$/)
  })
})
