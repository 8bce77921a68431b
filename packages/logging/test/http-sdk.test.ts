import { metrics, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import {
  AggregationTemporality,
  type HistogramMetricData,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Logger, openLogger } from '../src/logger.js'
import { allRecords, tempDir } from './helpers/files.js'
import { type RunningServer, servers } from './helpers/servers.js'

// A real OpenTelemetry SDK, registered the way an app does it.
const spans = new InMemorySpanExporter()
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).register()
const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
})
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))

const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

async function durationPoints() {
  const { resourceMetrics } = await reader.collect()
  const metric = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === 'http.server.request.duration') as HistogramMetricData | undefined
  return metric
}

describe.each(servers)('middleware with the OpenTelemetry SDK: %o', (start) => {
  let dir: string
  let log: Logger
  let server: RunningServer
  beforeAll(async () => {
    dir = tempDir()
    log = openLogger({ service: 'api', file: { dir } }, { handleExit: false })
    server = await start(log)
    spans.reset()
  })
  afterAll(async () => {
    await server.close()
    await log.close()
  })

  it('makes a SERVER span named by route, child of the caller, with HTTP attributes', async () => {
    const response = await fetch(`${server.url}/orders/o-1`, { headers: { traceparent: incoming } })
    expect(response.status).toBe(200)
    const header = response.headers.get('traceparent') ?? ''
    await log.flush()
    const span = spans.getFinishedSpans().find((s) => s.name === 'GET /orders/:id')
    expect(span).toBeDefined()
    expect(span?.kind).toBe(SpanKind.SERVER)
    expect(span?.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(span?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7')
    expect(header).toBe(`00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01`)
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/orders/o-1',
      'url.scheme': 'http',
      'http.route': '/orders/:id',
      'http.response.status_code': 200,
    })
    const handlerLine = allRecords(dir, 'api').find((r) => r.msg === 'loading order')
    expect(handlerLine).toMatchObject({ trace_id: span?.spanContext().traceId, span_id: span?.spanContext().spanId })
  })

  it('sets status ERROR on 5xx only', async () => {
    await fetch(`${server.url}/fail`)
    const failed = spans.getFinishedSpans().find((s) => s.attributes['url.path'] === '/fail')
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR)
    expect(failed?.attributes['error.type']).toBe('500')
    const ok = spans.getFinishedSpans().find((s) => s.attributes['url.path'] === '/orders/o-1')
    expect(ok?.status.code).toBe(SpanStatusCode.UNSET)
  })

  it('records http.server.request.duration in seconds with method, status and route', async () => {
    const metric = await durationPoints()
    expect(metric?.descriptor.unit).toBe('s')
    const point = metric?.dataPoints.find(
      (p) => p.attributes['http.route'] === '/orders/:id' && p.attributes['http.response.status_code'] === 200,
    )
    expect(point?.attributes['http.request.method']).toBe('GET')
    expect(point?.value.count).toBeGreaterThanOrEqual(1)
    expect(point?.value.sum).toBeGreaterThan(0.001)
    expect(point?.value.sum).toBeLessThan(5)
  })
})
