// What the end-to-end tests share: run N orders through a started flow, wait for the read model,
// and follow one order's trace through the log files.
import { collectTrace } from '@backplane/logging'
import { expect } from 'vitest'
import type { FlowEnvironment } from '../src/flow.js'
import { type OrderRun, type PlaceOrdersOptions, startOrderStream } from '../src/load.js'
import { serviceLogDirs } from '../src/runtime.js'
import { type FlowReport, verifyFlowSettled } from '../src/verify.js'

export async function runOrders(
  flow: FlowEnvironment,
  count: number,
  {
    rate = 40,
    during,
    beforePlacing,
  }: { rate?: number; during?: (run: OrderRun) => Promise<void> } & Pick<PlaceOrdersOptions, 'beforePlacing'> = {},
): Promise<OrderRun> {
  const run = await startOrderStream({
    ordersUrl: flow.urls.orders,
    brokerUrl: flow.runtime.brokerUrl,
    count,
    rate,
    ...(beforePlacing ? { beforePlacing } : {}),
  })
  try {
    if (during) await during(run)
    await run.settled(120_000)
    return run
  } finally {
    await run.close()
  }
}

/** The invariants hold once the read model has caught up (it follows the messages). */
export const settledReport = (flow: FlowEnvironment): Promise<FlowReport> =>
  verifyFlowSettled(flow.runtime, flow.urls.orders)

export function expectConsistent(report: FlowReport, orders: number): void {
  expect(report.problems).toEqual([])
  expect(report.orders).toBe(orders)
  expect(report.unfinished).toEqual([])
  expect((report.byState.delivered ?? 0) + (report.byState.cancelled ?? 0)).toBe(orders)
  // Money kept == delivered orders: every charge of a cancelled order was refunded.
  expect(report.providerCharges - report.providerRefunds).toBe(report.byState.delivered ?? 0)
  expect(report.charged).toBe(report.byState.delivered ?? 0)
}

/**
 * Reads every service's log files for the trace of one delivered order: its lines must come from
 * every service the order went through, and no line of another order may carry its trace id.
 */
export async function expectOneTrace(flow: FlowEnvironment, run: OrderRun): Promise<void> {
  const order = [...run.orders.values()].find((o) => o.state === 'delivered' && o.traceId)
  expect(order, 'a delivered order with a trace id').toBeDefined()
  const dirs = serviceLogDirs(flow.runtime)
  // Lines are written within a turn of the event loop; the services flushed on close, or soon.
  let lines = await collectTrace(order?.traceId as string, dirs)
  for (let i = 0; i < 20 && new Set(lines.map((l) => l.record['service.name'])).size < 6; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    lines = await collectTrace(order?.traceId as string, dirs)
  }
  const services = new Set(lines.map((l) => l.record['service.name']))
  expect([...services].sort()).toEqual(['analytics', 'inventory', 'notification', 'orders', 'payment', 'shipping'])
  const messages = lines.map((l) => `${l.record['service.name']}: ${l.record.msg}`)
  for (const expected of [
    'orders: order placed',
    'payment: payment completed',
    'inventory: stock reserved',
    'shipping: shipment created',
    'shipping: shipment delivered',
    'orders: order delivered',
    'analytics: revenue recorded',
  ])
    expect(messages).toContain(expected)
  expect(messages.some((m) => m.startsWith('notification: notified'))).toBe(true)
  const others = lines.filter((l) => {
    const id = l.record.orderId ?? l.record.shipment
    return typeof id === 'string' && !id.endsWith(order?.id as string)
  })
  expect(others.map((l) => l.raw)).toEqual([])
}
