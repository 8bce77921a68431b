// The OpenTelemetry Node SDK of one process, as a service team would run it: metrics pulled by
// Prometheus from `/metrics`, traces pushed over OTLP/HTTP when a receiver is configured. The
// packages only talk to @opentelemetry/api; this is the one place that picks the SDK and exporters.
// Pinned to the SDK 2.x line (sdk-node 0.223): SDK 3.x needs Node >= 22.15 and this example runs on 20.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { NodeSDK } from '@opentelemetry/sdk-node'
import { closeServer } from './lib/http.js'

export interface TelemetryOptions {
  /** `service.name` of every metric and span of this process. */
  readonly serviceName: string
  /** Port of the `/metrics` endpoint (0: any free port). */
  readonly metricsPort: number
  /** Address it listens on. Default 127.0.0.1. */
  readonly metricsHost?: string | undefined
  /**
   * Whether spans are exported over OTLP/HTTP. The exporter reads its address the standard way
   * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
   */
  readonly exportTraces: boolean
}

export interface Telemetry {
  /** `http://host:port/metrics`, what Prometheus scrapes. */
  readonly metricsUrl: string
  /** Flushes the spans still buffered and stops the `/metrics` server. */
  shutdown(): Promise<void>
}

/**
 * The options of a service process from the standard variables: OTEL_SERVICE_NAME,
 * OTEL_EXPORTER_PROMETHEUS_PORT / _HOST (the Prometheus exporter's own), OTEL_EXPORTER_OTLP_ENDPOINT.
 */
export function telemetryOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  serviceName = env.OTEL_SERVICE_NAME ?? 'order-flow',
): TelemetryOptions {
  return {
    serviceName,
    metricsPort: Number(env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 0),
    metricsHost: env.OTEL_EXPORTER_PROMETHEUS_HOST,
    exportTraces: Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
  }
}

/**
 * Starts the SDK and registers it globally: call it before the services start (their instruments
 * and tracers then come from it at once; the packages also pick up an SDK registered later).
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  // The exporter's own server cannot listen on port 0 (it falls back to 9464), so /metrics is
  // served here from its request handler: the port is then known even when chosen by the kernel.
  const prometheus = new PrometheusExporter({ preventServerStart: true })
  // Logs stay in the services' files (what `backplane-logs` reads); OTEL_LOGS_EXPORTER=otlp ships
  // them as well. Unset, the SDK would default to an OTLP log exporter and post to localhost:4318.
  process.env.OTEL_LOGS_EXPORTER ??= 'none'
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    metricReaders: [prometheus],
    // No receiver, no tracer provider: @backplane/logging still gives each request its own ids.
    ...(options.exportTraces ? { traceExporter: new OTLPTraceExporter() } : { spanProcessors: [] }),
  })
  sdk.start()
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') prometheus.getMetricsRequestHandler(req, res)
    else res.writeHead(404).end()
  })
  // Unref'd: the program ends when its own work is done, whatever Prometheus is doing.
  server.unref()
  const host = options.metricsHost ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.metricsPort, host, () => resolve())
  })
  const metricsUrl = `http://${host}:${(server.address() as AddressInfo).port}/metrics`
  let stopping: Promise<void> | undefined
  return {
    metricsUrl,
    shutdown: () => {
      stopping ??= (async () => {
        await closeServer(server)
        await sdk.shutdown()
      })()
      return stopping
    },
  }
}
