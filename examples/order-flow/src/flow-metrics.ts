// What Prometheus says about one run of the flow: the numbers the demo's summary prints and the
// Prometheus test holds against the orders it placed. Names as Prometheus shows OTel metrics from
// exporter-prometheus 0.223: dots become underscores, monotonic sums get `_total`, histograms
// `_bucket`/`_count`/`_sum`; the unit is NOT appended (`http_server_request_duration_count`).
import { type PrometheusTargets, queryNumber, queryPrometheus } from './prometheus.js'

export const METRIC = {
  httpRequests: 'http_server_request_duration_count',
  /** Every publish (`messaging_operation_name="send"`); handler runs are in `processed`. */
  messagingOperations: 'messaging_client_operation_duration_count',
  processed: 'messaging_process_duration_count',
  transitions: 'backplane_workflow_transitions_total',
  activityAttempts: 'backplane_workflow_activity_attempts_total',
  timerLagBucket: 'backplane_workflow_timer_lag_bucket',
  timerLagCount: 'backplane_workflow_timer_lag_count',
  configUpdates: 'backplane_config_updates_total',
} as const

export interface FlowMetrics {
  /** `POST /orders` requests the order API answered. */
  readonly ordersPosted: number
  /** Every HTTP request of the run (order API, webhooks, bridge), and the busiest second's rate. */
  readonly httpRequests: number
  readonly httpPeakRate: number
  /** Messages handled by a consumer, in total and by `topic group`; published messages by topic. */
  readonly processed: number
  readonly processedPeakRate: number
  readonly processedBy: Readonly<Record<string, number>>
  readonly sentBy: Readonly<Record<string, number>>
  /** Workflow transitions (history rows) by machine, and by `machine kind` (`order event`, `shipment timer`). */
  readonly transitions: Readonly<Record<string, number>>
  readonly transitionsByKind: Readonly<Record<string, number>>
  readonly transitionsPeakRate: number
  readonly activityFailures: number
  /** Timers fired (count of the lag histogram) and the lag's 99th percentile in seconds (NaN: none fired). */
  readonly timersFired: number
  readonly timerLagP99: number
  /** Configuration updates, by `service outcome` (`payment applied`). */
  readonly configUpdates: Readonly<Record<string, number>>
}

const byLabels = (samples: { labels: Record<string, string>; value: number }[], ...keys: string[]) => {
  const out: Record<string, number> = {}
  for (const s of samples) {
    const key = keys.map((k) => s.labels[k] ?? '').join(' ')
    out[key] = (out[key] ?? 0) + s.value
  }
  return out
}

/**
 * Reads the run's counters as of the last scrape; the peak rates look back `seconds` (the run's
 * length) at 1 s steps over 5 s windows.
 */
export async function readFlowMetrics(targets: PrometheusTargets, seconds: number): Promise<FlowMetrics> {
  const run = `run="${targets.run}"`
  const q = (promql: string) => queryNumber(targets.url, promql)
  const samples = (promql: string) => queryPrometheus(targets.url, promql)
  const window = `${Math.max(10, Math.ceil(seconds))}s`
  const peak = (metric: string) => q(`max_over_time(sum(rate(${metric}{${run}}[5s]))[${window}:1s])`)
  const [
    ordersPosted,
    httpRequests,
    httpPeakRate,
    processedSamples,
    sentSamples,
    processedPeakRate,
    transitionSamples,
    transitionsPeakRate,
    activityFailures,
    timersFired,
    timerLagP99,
    configSamples,
  ] = await Promise.all([
    q(`sum(${METRIC.httpRequests}{${run},service="orders",http_request_method="POST",http_route="/orders"})`),
    q(`sum(${METRIC.httpRequests}{${run}})`),
    peak(METRIC.httpRequests),
    samples(`sum by (messaging_destination_name, messaging_consumer_group_name) (${METRIC.processed}{${run}})`),
    samples(
      `sum by (messaging_destination_name) (${METRIC.messagingOperations}{${run},messaging_operation_name="send"})`,
    ),
    peak(METRIC.processed),
    samples(`sum by (workflow_machine, workflow_history_kind) (${METRIC.transitions}{${run}})`),
    peak(METRIC.transitions),
    q(`sum(${METRIC.activityAttempts}{${run},outcome="failure"})`),
    q(`sum(${METRIC.timerLagCount}{${run}})`),
    q(`histogram_quantile(0.99, sum by (le) (${METRIC.timerLagBucket}{${run}}))`),
    samples(`sum by (service, outcome) (${METRIC.configUpdates}{${run}})`),
  ])
  const processedBy = byLabels(processedSamples, 'messaging_destination_name', 'messaging_consumer_group_name')
  return {
    ordersPosted,
    httpRequests,
    httpPeakRate,
    processed: Object.values(processedBy).reduce((a, b) => a + b, 0),
    processedPeakRate,
    processedBy,
    sentBy: byLabels(sentSamples, 'messaging_destination_name'),
    transitions: byLabels(transitionSamples, 'workflow_machine'),
    transitionsByKind: byLabels(transitionSamples, 'workflow_machine', 'workflow_history_kind'),
    transitionsPeakRate,
    activityFailures,
    timersFired,
    // No fired timer: the quantile of an empty histogram is NaN, which queryNumber would sum to 0.
    timerLagP99: timersFired > 0 ? timerLagP99 : Number.NaN,
    configUpdates: byLabels(configSamples, 'service', 'outcome'),
  }
}
