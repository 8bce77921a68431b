import { lazyInstruments } from '@backplane/internal'

// Bucket boundaries the OpenTelemetry HTTP semantic conventions advise, in seconds.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** Every instrument of @backplane/logging, one place for the README's metric catalogue to match. */
export const instruments = lazyInstruments('@backplane/logging', (meter) => ({
  linesDropped: meter.createCounter('backplane.logging.lines.dropped', {
    unit: '{line}',
    description: 'Log lines dropped before reaching the file.',
  }),
  linesFallback: meter.createCounter('backplane.logging.lines.fallback', {
    unit: '{line}',
    description: 'Log lines written to stderr instead of the file.',
  }),
  maintenanceErrors: meter.createCounter('backplane.logging.maintenance.errors', {
    unit: '{error}',
    description: 'Failed background tasks on rolled files (compression, retention).',
  }),
  otelLogsFailed: meter.createCounter('backplane.logging.otel_logs.failed', {
    unit: '{record}',
    description: 'Records the OpenTelemetry Logs hand-off failed on (their lines still reach the files).',
  }),
  httpServerDuration: meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests.',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  }),
}))

/** Why lines were dropped (the `reason` attribute). */
export const DROPPED_BUFFER_FULL = Object.freeze({ reason: 'buffer_full' })
/** Why lines went to stderr (the `reason` attribute): the file failed, or the logger was closed. */
export const FALLBACK_WRITE_FAILED = Object.freeze({ reason: 'write_failed' })
export const FALLBACK_CLOSED = Object.freeze({ reason: 'closed' })

/** The background task that failed (the `task` attribute). */
export type MaintenanceTask = 'compress' | 'retention' | 'recovery'
