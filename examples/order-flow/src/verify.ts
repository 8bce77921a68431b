// Checks the flow's invariants across every service's own data: each order final, money kept ==
// delivered orders (no double charge, every cancelled order refunded or never charged), stock
// taken == stock of delivered orders, the read model agreeing. The demo prints it; tests assert it.

import { type Runtime, serviceDb } from './runtime.js'
import type { OrderState } from './topics.js'

interface OrderView {
  id: string
  state: OrderState
  status: string
  amountCents: number
  items: { sku: string; qty: number }[]
  reason?: string
}

export interface FlowReport {
  readonly orders: number
  readonly byState: Record<string, number>
  /** Orders that are not in a final state. */
  readonly unfinished: readonly string[]
  /** Orders whose payment ended charged (and stayed so). */
  readonly charged: number
  /** Charges the provider took (succeeded), and refunds it made. */
  readonly providerCharges: number
  readonly providerRefunds: number
  /** Provider calls answered from its idempotency ledger (a repeated key). */
  readonly replayedCalls: number
  /** Orders paid and then refunded (compensation), and orders voided before any charge. */
  readonly refunded: number
  readonly revenueCents: number
  /** Every invariant that does not hold, in words; empty when all hold. */
  readonly problems: readonly string[]
}

export async function listOrders(ordersUrl: string): Promise<OrderView[]> {
  const all: OrderView[] = []
  let after: string | null = null
  do {
    const response: Response = await fetch(
      `${ordersUrl}/orders?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`,
    )
    if (!response.ok) throw new Error(`GET /orders answered ${response.status}`)
    const page = (await response.json()) as { orders: OrderView[]; next: string | null }
    all.push(...page.orders)
    after = page.next
  } while (after)
  return all
}

export async function verifyFlow(runtime: Runtime, ordersUrl: string): Promise<FlowReport> {
  const problems: string[] = []
  const orders = await listOrders(ordersUrl)
  const byState: Record<string, number> = {}
  for (const o of orders) byState[o.state] = (byState[o.state] ?? 0) + 1
  const unfinished = orders.filter((o) => o.status !== 'done').map((o) => o.id)
  if (unfinished.length > 0)
    problems.push(`${unfinished.length} orders not final: ${unfinished.slice(0, 5).join(', ')}`)
  const known = new Set(orders.map((o) => o.id))
  const delivered = new Map(orders.filter((o) => o.state === 'delivered').map((o) => [o.id, o]))

  const payment = serviceDb(runtime, 'payment')
  const inventory = serviceDb(runtime, 'inventory')
  const analytics = serviceDb(runtime, 'analytics')
  try {
    const charges = await payment.query<{ order_id: string; status: string; amount_cents: number }>(
      'SELECT order_id, status, amount_cents FROM payment_charges',
    )
    const chargeOf = new Map(charges.map((c) => [c.order_id, c]))
    let charged = 0
    let refunded = 0
    for (const o of orders) {
      const c = chargeOf.get(o.id)
      if (o.state === 'delivered') {
        if (c?.status !== 'charged') problems.push(`delivered order ${o.id} has payment ${c?.status ?? 'none'}`)
      } else if (o.state === 'cancelled' && c?.status === 'charged') {
        problems.push(`cancelled order ${o.id} is still charged`)
      }
      if (c?.status === 'charged') charged++
      if (c?.status === 'refunded') refunded++
    }
    const ledger = await payment.query<{
      kind: string
      order_id: string
      outcome: string
      amount_cents: number
      calls: number
    }>('SELECT kind, order_id, outcome, amount_cents, calls FROM payment_provider_ledger')
    const kept = new Map<string, number>()
    let providerCharges = 0
    let providerRefunds = 0
    let replayedCalls = 0
    for (const row of ledger) {
      replayedCalls += Number(row.calls) - 1
      if (row.outcome !== 'succeeded') continue
      const sign = row.kind === 'charge' ? 1 : -1
      if (row.kind === 'charge') providerCharges++
      else providerRefunds++
      kept.set(row.order_id, (kept.get(row.order_id) ?? 0) + sign * Number(row.amount_cents))
    }
    for (const [orderId, cents] of kept) {
      const order = delivered.get(orderId)
      if (order && cents !== order.amountCents)
        problems.push(`delivered order ${orderId}: the provider kept ${cents} cents, the order is ${order.amountCents}`)
      if (!order && known.has(orderId) && cents !== 0)
        problems.push(`order ${orderId} is not delivered but the provider kept ${cents} cents`)
    }
    for (const id of delivered.keys()) if (!kept.has(id)) problems.push(`delivered order ${id} was never charged`)
    if (charged !== delivered.size) problems.push(`${charged} orders charged, ${delivered.size} delivered`)

    const stock = await inventory.query<{ sku: string; available: number; initial: number }>(
      'SELECT sku, available, initial FROM inventory_stock',
    )
    const reservations = await inventory.query<{ order_id: string; status: string; items: string }>(
      'SELECT order_id, status, items FROM inventory_reservations',
    )
    const taken = new Map<string, number>()
    for (const r of reservations) {
      if (r.status !== 'reserved') continue
      if (!delivered.has(r.order_id)) problems.push(`order ${r.order_id} holds stock but is not delivered`)
      for (const item of JSON.parse(r.items) as { sku: string; qty: number }[])
        taken.set(item.sku, (taken.get(item.sku) ?? 0) + item.qty)
    }
    const reservedOrders = new Set(reservations.filter((r) => r.status === 'reserved').map((r) => r.order_id))
    for (const id of delivered.keys())
      if (!reservedOrders.has(id)) problems.push(`delivered order ${id} has no stock reserved`)
    for (const s of stock) {
      const used = Number(s.initial) - Number(s.available)
      if (used !== (taken.get(s.sku) ?? 0))
        problems.push(`stock of ${s.sku}: ${used} taken, reservations hold ${taken.get(s.sku) ?? 0}`)
      if (Number(s.available) < 0) problems.push(`stock of ${s.sku} is negative`)
    }

    const [view] = await analytics.query<{ n: number | string; cents: number | string | null }>(
      `SELECT COUNT(*) AS n, SUM(amount_cents) AS cents FROM analytics_orders WHERE state = 'delivered'`,
    )
    const [sales] = await analytics.query<{ n: number | string | null; cents: number | string | null }>(
      `SELECT SUM(orders) AS n, SUM(revenue_cents) AS cents FROM analytics_sales WHERE period = 'day'`,
    )
    const revenueCents = [...delivered.values()].reduce((sum, o) => sum + o.amountCents, 0)
    if (Number(view?.n ?? 0) !== delivered.size)
      problems.push(`read model: ${view?.n} delivered orders, ${delivered.size} expected`)
    if (Number(sales?.cents ?? 0) !== revenueCents || Number(sales?.n ?? 0) !== delivered.size)
      problems.push(
        `read model: revenue ${sales?.cents ?? 0} cents over ${sales?.n ?? 0} orders, expected ${revenueCents} over ${delivered.size}`,
      )

    return {
      orders: orders.length,
      byState,
      unfinished,
      charged,
      providerCharges,
      providerRefunds,
      replayedCalls,
      refunded,
      revenueCents,
      problems,
    }
  } finally {
    await Promise.all([payment.close(), inventory.close(), analytics.close()])
  }
}

/**
 * `verifyFlow` once the read model has caught up: analytics follows the messages, so right after
 * the last order is final its tables may still be behind. Checks again until every invariant holds
 * or `timeoutMs` passed, and returns the last report.
 */
export async function verifyFlowSettled(runtime: Runtime, ordersUrl: string, timeoutMs = 30_000): Promise<FlowReport> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const report = await verifyFlow(runtime, ordersUrl)
    if (report.problems.length === 0 || Date.now() > deadline) return report
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
