// A stand-in for an OpenTelemetry Collector in the Prometheus test: an HTTP server that accepts
// OTLP/HTTP JSON trace exports (`POST /v1/traces`, what exporter-trace-otlp-http sends) and keeps
// the spans, so the test can check that every process really exported its part of a trace. It is
// not a collector: no protobuf, no gzip, no other signals.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly name: string
}

export interface OtlpReceiver {
  /** What OTEL_EXPORTER_OTLP_ENDPOINT takes (`http://127.0.0.1:port`). */
  readonly url: string
  readonly spans: readonly ReceivedSpan[]
  close(): Promise<void>
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] }
    scopeSpans?: { spans?: { traceId: string; name: string }[] }[]
  }[]
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end()
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest
    for (const rs of body.resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?'
      for (const ss of rs.scopeSpans ?? [])
        for (const span of ss.spans ?? []) spans.push({ service, traceId: span.traceId, name: span.name })
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
