// analytics: a read model fed by `orders.status`. It keeps one row per order (its latest state)
// and revenue per hour and per day of delivered orders, and serves them over HTTP. Statuses may
// arrive twice or out of order: a row moves only forward (STATE_RANK), and revenue is counted in
// the same transaction as the move to `delivered`, so it is counted once.
import { createServer } from 'node:http'
import { withHttpLogging } from '@backplane/logging'
import { z } from 'zod'
import { closeServer, createRouter, listen, parse, sendJson } from '../lib/http.js'
import { type Service, startServiceBase } from '../lib/service.js'
import { type Runtime, serviceDb } from '../runtime.js'
import { type MessageOf, OrdersStatus, STATE_RANK } from '../topics.js'

export const ANALYTICS_SCHEMA = `
CREATE TABLE IF NOT EXISTS analytics_orders (
  order_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  state_rank INTEGER NOT NULL,
  customer_id TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  reason TEXT
);
CREATE TABLE IF NOT EXISTS analytics_sales (
  period TEXT NOT NULL,
  bucket_start BIGINT NOT NULL,
  orders INTEGER NOT NULL,
  revenue_cents INTEGER NOT NULL,
  PRIMARY KEY (period, bucket_start)
);`

const PERIOD_MS = { hour: 3_600_000, day: 86_400_000 } as const

const SalesQuery = z.strictObject({
  period: z.enum(['hour', 'day']).default('hour'),
  limit: z.coerce.number().int().min(1).max(1000).default(48),
})

export async function startAnalytics(runtime: Runtime): Promise<Service> {
  const base = await startServiceBase(runtime, 'analytics')
  const { log, broker } = base
  const db = serviceDb(runtime, 'analytics')
  await db.exec(ANALYTICS_SCHEMA)

  const onStatus = async ({ data, publishedAt }: MessageOf<typeof OrdersStatus>) => {
    const at = publishedAt?.getTime() ?? Date.now()
    const rank = STATE_RANK[data.state]
    const moved = await db.transaction(async (tx) => {
      const changed = await tx.run(
        `INSERT INTO analytics_orders (order_id, state, state_rank, customer_id, amount_cents, created_at, updated_at, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (order_id) DO UPDATE SET state = excluded.state, state_rank = excluded.state_rank,
           updated_at = excluded.updated_at, reason = excluded.reason
         WHERE analytics_orders.state_rank < excluded.state_rank`,
        [data.orderId, data.state, rank, data.customerId, data.amountCents, data.createdAt, at, data.reason ?? null],
      )
      if (changed === 0 || data.state !== 'delivered') return changed > 0
      for (const [period, ms] of Object.entries(PERIOD_MS)) {
        await tx.run(
          `INSERT INTO analytics_sales (period, bucket_start, orders, revenue_cents) VALUES ($1, $2, 1, $3)
           ON CONFLICT (period, bucket_start) DO UPDATE SET orders = analytics_sales.orders + 1,
             revenue_cents = analytics_sales.revenue_cents + excluded.revenue_cents`,
          [period, Math.floor(at / ms) * ms, data.amountCents],
        )
      }
      return true
    })
    if (moved) log.debug({ orderId: data.orderId, state: data.state }, 'order view updated')
    if (moved && data.state === 'delivered')
      log.info({ orderId: data.orderId, amountCents: data.amountCents }, 'revenue recorded')
  }
  const subscription = await broker.subscribe(OrdersStatus, onStatus, {
    group: 'analytics',
    from: 'earliest',
    retry: { maxAttempts: 5 },
    concurrency: 16,
    ordered: true,
  })

  const router = createRouter(
    [
      {
        method: 'GET',
        route: '/analytics/sales',
        handle: async (_req, res, _params, url) => {
          const { period, limit } = parse(SalesQuery, Object.fromEntries(url.searchParams), 'query')
          const rows = await db.query<{ bucket_start: string | number; orders: number; revenue_cents: number }>(
            'SELECT bucket_start, orders, revenue_cents FROM analytics_sales WHERE period = $1 ORDER BY bucket_start DESC LIMIT $2',
            [period, limit],
          )
          sendJson(res, 200, {
            period,
            buckets: rows.map((r) => ({
              start: new Date(Number(r.bucket_start)).toISOString(),
              orders: Number(r.orders),
              revenueCents: Number(r.revenue_cents),
            })),
          })
        },
      },
      {
        method: 'GET',
        route: '/analytics/orders',
        handle: async (_req, res) => {
          const rows = await db.query<{ state: string; n: string | number; cents: string | number | null }>(
            'SELECT state, COUNT(*) AS n, SUM(amount_cents) AS cents FROM analytics_orders GROUP BY state',
          )
          sendJson(res, 200, {
            byState: Object.fromEntries(rows.map((r) => [r.state, Number(r.n)])),
            total: rows.reduce((sum, r) => sum + Number(r.n), 0),
          })
        },
      },
      { method: 'GET', route: '/healthz', handle: async (_req, res) => sendJson(res, 200, { ok: true }) },
    ],
    { log },
  )
  const server = createServer(
    withHttpLogging(log, router.handler, { route: router.routeOf, ignore: (req) => req.url === '/healthz' }),
  )
  const url = await listen(server, runtime.ports.analytics ?? 0)
  log.info({ url }, 'analytics service listening')
  return {
    name: 'analytics',
    url,
    close: async () => {
      await closeServer(server)
      await subscription.close()
      await base.close()
      await db.close()
    },
  }
}
