import { type Counter, type Histogram, metrics, type UpDownCounter } from '@opentelemetry/api'

const SCOPE = '@backplane/messaging/bridge'

interface Instruments {
  provider: unknown
  requests: Histogram
  webhookCalls: Counter
  webhookDuration: Histogram
  sseStreams: UpDownCounter
  routed: Counter
  breakers: UpDownCounter
  probes: Counter
}

let instruments: Instruments | undefined

/**
 * The bridge's metrics, through the OpenTelemetry API (no-ops until the app registers a meter
 * provider; made again if it registers one later):
 * - `http.server.request.duration` (s): `http.request.method`, `http.route`, `http.response.status_code`
 * - `backplane.bridge.webhook.calls`: `backplane.subscription.id`, `outcome` (`delivered`, `failed`, `gone`, `filtered`)
 * - `backplane.bridge.webhook.duration` (s): `backplane.subscription.id`
 * - `backplane.bridge.sse.streams`: open SSE streams
 * - `backplane.bridge.route.messages`: `backplane.route.id`, `outcome` (`forwarded`, `filtered`, `failed`)
 * - `backplane.bridge.webhook.breakers`: breakers not closed, by `backplane.subscription.id`, `state` (`open`, `half-open`, `disabled`)
 * - `backplane.bridge.webhook.probes`: probe calls of half-open breakers, `backplane.subscription.id`, `outcome` (`success`, `failure`)
 */
export function bridgeMetrics(): Instruments {
  const provider = metrics.getMeterProvider()
  if (instruments?.provider === provider) return instruments
  const meter = provider.getMeter(SCOPE)
  instruments = {
    provider,
    requests: meter.createHistogram('http.server.request.duration', {
      unit: 's',
      description: 'Duration of HTTP server requests.',
    }),
    webhookCalls: meter.createCounter('backplane.bridge.webhook.calls', {
      unit: '{call}',
      description: 'Webhook calls made by the bridge, by outcome.',
    }),
    webhookDuration: meter.createHistogram('backplane.bridge.webhook.duration', {
      unit: 's',
      description: 'Duration of webhook calls.',
    }),
    sseStreams: meter.createUpDownCounter('backplane.bridge.sse.streams', {
      unit: '{stream}',
      description: 'Open Server-Sent Events streams.',
    }),
    routed: meter.createCounter('backplane.bridge.route.messages', {
      unit: '{message}',
      description: 'Messages read by routes, by outcome.',
    }),
    breakers: meter.createUpDownCounter('backplane.bridge.webhook.breakers', {
      unit: '{breaker}',
      description: 'Webhook breakers that are not closed, by state.',
    }),
    probes: meter.createCounter('backplane.bridge.webhook.probes', {
      unit: '{probe}',
      description: 'Probe calls of half-open webhook breakers, by outcome.',
    }),
  }
  return instruments
}
