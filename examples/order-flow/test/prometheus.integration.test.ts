// The flow measured as an operator sees it: every process runs the OpenTelemetry SDK, a real
// Prometheus (scripts/services.sh) scrapes each one's /metrics every second, and what it stores is
// held against the orders this test placed. Spans go over OTLP/HTTP to a stand-in receiver.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type FlowEnvironment, startFlow } from '../src/flow.js'
import { type FlowMetrics, readFlowMetrics } from '../src/flow-metrics.js'
import { dropDatabase, ensureServers } from '../src/infra.js'
import type { OrderRun } from '../src/load.js'
import { waitForScrape } from '../src/prometheus.js'
import { SERVICE_NAMES } from '../src/services/index.js'
import { expectConsistent, runOrders, settledReport } from './helpers.js'
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.js'
import { type PrivateBroker, privateBroker } from './servers.js'

const ORDERS = 60

describe('order flow, distributed, measured by Prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'order-flow-prometheus-run-'))
  const database = `order_flow_test_prometheus_${process.pid}`
  const saved = { ...process.env }
  let receiver: OtlpReceiver
  let broker: PrivateBroker
  let flow: FlowEnvironment
  let run: OrderRun
  let metrics: FlowMetrics
  /** Rows in the history of every order: one per committed transition, late ignored events included. */
  let historyRows = 0
  let closed = false

  const countHistoryRows = async () => {
    let rows = 0
    for (const id of run.orders.keys()) {
      const order = (await (await fetch(`${flow.urls.orders}/orders/${id}`)).json()) as { history: unknown[] }
      rows += order.history.length
    }
    return rows
  }

  beforeAll(async () => {
    receiver = await startOtlpReceiver()
    // The service processes inherit these: spans to the receiver, exported every 500 ms.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url
    process.env.OTEL_BSP_SCHEDULE_DELAY = '500'
    const prometheus = ensureServers(['etcd', 'postgres', 'prometheus'])
    broker = privateBroker('nats', 42285)
    flow = await startFlow({
      mode: 'distributed',
      broker: 'nats',
      dir,
      servers: {
        ...broker.servers,
        prometheusUrl: prometheus.prometheusUrl,
        prometheusTargetsDir: prometheus.prometheusTargetsDir,
      },
      database,
      settings: { 'payment.failureRate': 0.2, 'shipping.deliveryDelay': '1s' },
    })
    const targets = flow.prometheus
    if (!targets) throw new Error('the flow registered no Prometheus targets (PROMETHEUS_TARGETS_DIR not set?)')
    // Prometheus finds a new targets file only after a few seconds: until it has scraped every
    // process once, counters it first sees already at their final value show no rate at all.
    await waitForScrape(targets, new Date())
    const started = Date.now()
    run = await runOrders(flow, ORDERS, {
      rate: 30,
      // One live configuration change, which the payment process applies.
      beforePlacing: async (index) => {
        if (index === ORDERS / 2) await flow.setConfig('payment.failureRate', 0.3)
      },
    })
    expectConsistent(await settledReport(flow), ORDERS)
    // A late event (shipments.created after its order's delivery) still adds an `ignored` row
    // after the order is final: read the histories on both sides of the scrape until they hold still.
    for (let attempt = 1; ; attempt++) {
      const before = await countHistoryRows()
      await waitForScrape(targets, new Date())
      metrics = await readFlowMetrics(targets, (Date.now() - started) / 1000)
      historyRows = await countHistoryRows()
      if (historyRows === before || attempt === 5) break
    }
  }, 240_000)

  afterAll(async () => {
    if (!closed) await flow?.close()
    if (broker) {
      await dropDatabase(broker.servers.databaseUrl, database).catch(() => undefined)
      broker.stop()
    }
    await receiver?.close()
    process.env = saved
    rmSync(dir, { recursive: true, force: true })
  }, 120_000)

  const orders = () => [...run.orders.values()]
  const delivered = () => orders().filter((o) => o.state === 'delivered').length
  const declined = () => orders().filter((o) => o.reason === 'card declined').length

  it('counts every POST /orders the order API answered', () => {
    expect(run.failedRequests).toBe(0)
    expect(metrics.ordersPosted).toBe(ORDERS)
    // The order API's, the bridge's and the notification webhook's requests on top.
    expect(metrics.httpRequests).toBeGreaterThan(ORDERS)
    expect(metrics.httpPeakRate).toBeGreaterThan(0)
  })

  it('counts each message processed as often as it was published', () => {
    expect(metrics.sentBy['orders.created']).toBe(ORDERS)
    expect(metrics.processedBy['orders.created payment']).toBe(ORDERS)
    expect(metrics.sentBy['shipments.create']).toBe(delivered())
    expect(metrics.processedBy['shipments.create shipping']).toBe(delivered())
    // Every declined card is one payments.failed message, turned into PAYMENT_FAILED by the orders process.
    expect(declined()).toBeGreaterThan(0)
    expect(metrics.processedBy['payments.failed orders']).toBe(declined())
    expect(metrics.processedPeakRate).toBeGreaterThan(0)
  })

  it('counts one workflow transition per history row, as many as each final state implies', () => {
    expect(metrics.transitions.order).toBe(historyRows)
    // Accepted events, at least: delivered SUBMIT, PAYMENT_COMPLETED, STOCK_RESERVED, DELIVERED
    // (SHIPMENT_CREATED may come after DELIVERED and be ignored); card declined SUBMIT,
    // PAYMENT_FAILED; out of stock SUBMIT, PAYMENT_COMPLETED, STOCK_REJECTED, REFUNDED.
    const least = orders().reduce((sum, o) => sum + (o.reason === 'card declined' ? 2 : 4), 0)
    expect(metrics.transitionsByKind['order event']).toBeGreaterThanOrEqual(least)
    expect(metrics.transitionsByKind['order start']).toBe(ORDERS)
    // Each shipment: started, then delivered by its timer.
    expect(metrics.transitionsByKind['shipment start']).toBe(delivered())
    expect(metrics.transitionsByKind['shipment timer']).toBe(delivered())
  })

  it('records no failed activity attempts: the saga’s steps are messages, not activities', () => {
    expect(metrics.activityFailures).toBe(0)
  })

  it('measures the lag of every delivery timer that fired', () => {
    // No payment timed out (30 s): the only timers that fired are the deliveries.
    expect(orders().filter((o) => o.reason === 'payment timed out')).toEqual([])
    expect(metrics.timersFired).toBe(delivered())
    expect(metrics.timerLagP99).toBeGreaterThanOrEqual(0)
    // The timers fire on the engine's poll (250 ms here), not seconds late.
    expect(metrics.timerLagP99).toBeLessThan(10)
  })

  it('counts the configuration update each process watching etcd applied', () => {
    // One etcd change: every service with a configuration applies it (notification has none).
    for (const service of ['orders', 'payment', 'inventory', 'shipping', 'analytics'])
      expect(metrics.configUpdates[`${service} applied`], service).toBe(1)
    expect(Object.keys(metrics.configUpdates).filter((k) => k.endsWith(' rejected'))).toEqual([])
  })

  it('exports the spans of one order from every process over OTLP', async () => {
    await flow.close() // each process flushes its spans as it stops
    closed = true
    const order = orders().find((o) => o.state === 'delivered' && o.traceId)
    expect(order, 'a delivered order with a trace id').toBeDefined()
    const services = () => new Set(receiver.spans.filter((s) => s.traceId === order?.traceId).map((s) => s.service))
    for (let i = 0; i < 40 && services().size < SERVICE_NAMES.length + 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 250))
    expect([...services()].sort()).toEqual([...SERVICE_NAMES, 'bridge'].sort())
    const names = receiver.spans.filter((s) => s.traceId === order?.traceId).map((s) => s.name)
    expect(names).toContain('POST /orders')
    expect(names).toContain('process orders.created')
  })
})
