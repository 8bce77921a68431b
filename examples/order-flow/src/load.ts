// The demo's customers: places a stream of orders over HTTP and follows each to its final state
// through the `orders.status` messages, measuring end-to-end latency (request sent → final status
// received). Used by the demo, the end-to-end tests and the flow benchmark.
import { type Broker, createBroker } from '@backplane/messaging'
import { catalog } from './catalog.js'
import { FINAL_STATES, type OrderState, type OrderStatus, OrdersStatus, STATE_RANK } from './topics.js'

export interface OrderRun {
  /** Order id → what is known of it. */
  readonly orders: ReadonlyMap<string, TrackedOrder>
  /** Resolves once every order was placed (accepted by the order API). */
  readonly placing: Promise<void>
  /** Count of orders by latest state. */
  counts(): Record<string, number>
  readonly placed: number
  readonly finished: number
  readonly failedRequests: number
  /** Resolves when every placed order reached a final state (or rejects after `timeoutMs`). */
  settled(timeoutMs: number): Promise<void>
  close(): Promise<void>
}

export interface TrackedOrder {
  readonly id: string
  readonly index: number
  readonly sentAt: number
  state: OrderState
  reason?: string | undefined
  traceId?: string | undefined
  finishedAt?: number | undefined
}

export interface PlaceOrdersOptions {
  readonly ordersUrl: string
  readonly brokerUrl: string
  readonly count: number
  /** Orders per second. */
  readonly rate: number
  /** Requests in flight at most. */
  readonly concurrency?: number
  /** Called after each order was accepted (index from 0). */
  readonly onPlaced?: (index: number) => void | Promise<void>
  /** Called before each order is placed; placing waits for it (a pause at a chosen point). */
  readonly beforePlacing?: (index: number, orders: ReadonlyMap<string, TrackedOrder>) => void | Promise<void>
  /** Id prefix, to tell runs apart. */
  readonly prefix?: string
}

function randomOrder(index: number, prefix: string) {
  const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)] as T
  const everyday = catalog.filter((p) => p.stock === undefined)
  const items = new Map<string, number>()
  for (let n = 1 + Math.floor(Math.random() * 3); n > 0; n--) {
    const sku = pick(everyday).sku
    items.set(sku, (items.get(sku) ?? 0) + 1)
  }
  // One order in four wants the limited edition, which runs out: those are paid, then refunded.
  if (index % 4 === 3) items.set('limited', 1)
  return {
    id: `${prefix}-${String(index).padStart(5, '0')}`,
    customerId: `cust-${1 + Math.floor(Math.random() * 50)}`,
    items: [...items].map(([sku, qty]) => ({ sku, qty })),
  }
}

export async function startOrderStream(options: PlaceOrdersOptions): Promise<OrderRun> {
  const prefix = options.prefix ?? `ord-${Date.now().toString(36)}`
  const orders = new Map<string, TrackedOrder>()
  const early = new Map<string, OrderStatus>()
  let placed = 0
  let finished = 0
  let failedRequests = 0
  let wake: (() => void) | undefined

  const apply = (order: TrackedOrder, status: OrderStatus) => {
    if (STATE_RANK[status.state] <= STATE_RANK[order.state] && order.state !== 'created') return
    order.state = status.state
    if (status.reason !== undefined) order.reason = status.reason
    if (FINAL_STATES.includes(status.state) && order.finishedAt === undefined) {
      order.finishedAt = Date.now()
      finished++
      wake?.()
    }
  }

  // No group: this subscriber sees every status, alongside the services' own groups.
  const broker: Broker = await createBroker(options.brokerUrl)
  const subscription = await broker.subscribe(OrdersStatus, async ({ data }) => {
    const order = orders.get(data.orderId)
    if (order) apply(order, data)
    else if (data.orderId.startsWith(prefix)) early.set(data.orderId, data)
  })

  const place = async (index: number) => {
    const body = randomOrder(index, prefix)
    const sentAt = Date.now()
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(`${options.ordersUrl}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
        if (response.status !== 201 && response.status !== 200)
          throw new Error(`POST /orders answered ${response.status}: ${await response.text()}`)
        const answer = (await response.json()) as { id: string; state: OrderState; traceId?: string }
        const order: TrackedOrder = { id: answer.id, index, sentAt, state: 'created', traceId: answer.traceId }
        orders.set(answer.id, order)
        placed++
        const seen = early.get(answer.id)
        if (seen) apply(order, seen)
        await options.onPlaced?.(index)
        return
      } catch (error) {
        // The order service may be restarting (crash tests): the same id makes the retry safe.
        failedRequests++
        if (attempt >= 60) throw error
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  }

  const placing = (async () => {
    const started = Date.now()
    const inFlight = new Set<Promise<void>>()
    const concurrency = options.concurrency ?? 32
    for (let index = 0; index < options.count; index++) {
      const due = started + (index * 1000) / options.rate
      const wait = due - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      while (inFlight.size >= concurrency) await Promise.race(inFlight)
      await options.beforePlacing?.(index, orders)
      const p: Promise<void> = place(index).finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    await Promise.all(inFlight)
  })()
  placing.catch(() => undefined)

  return {
    orders,
    placing,
    get placed() {
      return placed
    },
    get finished() {
      return finished
    },
    get failedRequests() {
      return failedRequests
    },
    counts: () => {
      const counts: Record<string, number> = {}
      for (const order of orders.values()) counts[order.state] = (counts[order.state] ?? 0) + 1
      return counts
    },
    settled: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      await placing
      while (finished < orders.size) {
        const left = deadline - Date.now()
        if (left <= 0) {
          const stuck = [...orders.values()].filter((o) => o.finishedAt === undefined)
          const states = new Map<string, number>()
          for (const o of stuck) states.set(o.state, (states.get(o.state) ?? 0) + 1)
          const summary = [...states].map(([state, n]) => `${state} ${n}`).join(', ')
          const examples = stuck.slice(0, 3).map((o) => o.id)
          throw new Error(
            `${stuck.length} of ${orders.size} orders did not finish in ${timeoutMs} ms (${summary}; e.g. ${examples.join(', ')})`,
          )
        }
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, Math.min(left, 500))
        })
      }
    },
    close: async () => {
      await subscription.close()
      await broker.close()
    },
  }
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}
