// inventory: reserves an order's items in one transaction (all or nothing) and releases them when
// the order is cancelled. A reservation row per order makes both idempotent, and a release that
// arrives before its reservation leaves a tombstone so the late reservation is rejected.
import { catalog, productBySku } from '../catalog.js'
import type { Sql } from '../lib/db.js'
import { type Service, startServiceBase } from '../lib/service.js'
import { type Runtime, serviceDb } from '../runtime.js'
import {
  InventoryRejected,
  InventoryRelease,
  InventoryReleased,
  InventoryReserve,
  InventoryReserved,
  type MessageOf,
  type OrderItem,
} from '../topics.js'

export const INVENTORY_SCHEMA = `
CREATE TABLE IF NOT EXISTS inventory_stock (
  sku TEXT PRIMARY KEY,
  available INTEGER NOT NULL,
  initial INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inventory_reservations (
  order_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  items TEXT NOT NULL,
  reason TEXT,
  updated_at BIGINT NOT NULL
);`

type ReservationStatus = 'pending' | 'reserved' | 'rejected' | 'released'

class OutOfStock extends Error {}

export async function startInventory(runtime: Runtime): Promise<Service> {
  const base = await startServiceBase(runtime, 'inventory')
  const { log, broker, config } = base
  const db = serviceDb(runtime, 'inventory')
  await db.exec(INVENTORY_SCHEMA)
  for (const product of catalog) {
    const stock = product.stock ?? config.get('inventory.initialStock')
    await db.run(
      'INSERT INTO inventory_stock (sku, available, initial) VALUES ($1, $2, $2) ON CONFLICT (sku) DO NOTHING',
      [product.sku, stock],
    )
  }

  const reservation = async (sql: Sql, orderId: string) =>
    (
      await sql.query<{ status: ReservationStatus; reason: string | null }>(
        'SELECT status, reason FROM inventory_reservations WHERE order_id = $1',
        [orderId],
      )
    )[0]

  const answer = async (orderId: string, status: ReservationStatus, reason: string | null) => {
    if (status === 'reserved') {
      await broker.publish(InventoryReserved, { orderId }, { key: orderId, id: `inventory-reserved/${orderId}` })
      log.info({ orderId }, 'stock reserved')
    } else {
      const why = reason ?? 'order cancelled'
      await broker.publish(
        InventoryRejected,
        { orderId, reason: why },
        { key: orderId, id: `inventory-rejected/${orderId}` },
      )
      log.info({ orderId, reason: why }, 'stock reservation rejected')
    }
  }

  const take = async (sql: Sql, items: readonly OrderItem[]) => {
    // Rows locked in one order (by SKU) by every transaction: two orders cannot deadlock on PostgreSQL.
    for (const { sku, qty } of [...items].sort((a, b) => a.sku.localeCompare(b.sku))) {
      const taken = await sql.run(
        'UPDATE inventory_stock SET available = available - $1 WHERE sku = $2 AND available >= $1',
        [qty, sku],
      )
      if (taken === 0) throw new OutOfStock(`out of stock: ${productBySku.get(sku)?.name ?? sku}`)
    }
  }

  const onReserve = async ({ data: { orderId, items } }: MessageOf<typeof InventoryReserve>) => {
    const outcome = await db
      .transaction(async (tx) => {
        const known = await reservation(tx, orderId)
        if (known) return known
        await take(tx, items)
        await tx.run(
          `INSERT INTO inventory_reservations (order_id, status, items, reason, updated_at) VALUES ($1, 'reserved', $2, NULL, $3)`,
          [orderId, JSON.stringify(items), Date.now()],
        )
        return { status: 'reserved' as const, reason: null }
      })
      .catch(async (error) => {
        if (!(error instanceof OutOfStock)) throw error
        await db.run(
          `INSERT INTO inventory_reservations (order_id, status, items, reason, updated_at)
           VALUES ($1, 'rejected', $2, $3, $4) ON CONFLICT (order_id) DO NOTHING`,
          [orderId, JSON.stringify(items), error.message, Date.now()],
        )
        return (await reservation(db, orderId)) ?? { status: 'rejected' as const, reason: error.message }
      })
    await answer(orderId, outcome.status, outcome.reason)
  }

  const onRelease = async ({ data: { orderId } }: MessageOf<typeof InventoryRelease>) => {
    const released = await db.transaction(async (tx) => {
      const rows = await tx.query<{ status: ReservationStatus; items: string }>(
        'SELECT status, items FROM inventory_reservations WHERE order_id = $1',
        [orderId],
      )
      const known = rows[0]
      if (!known) {
        await tx.run(
          `INSERT INTO inventory_reservations (order_id, status, items, reason, updated_at) VALUES ($1, 'released', '[]', 'order cancelled', $2)`,
          [orderId, Date.now()],
        )
        return 0
      }
      if (known.status !== 'reserved') return 0
      const items = JSON.parse(known.items) as OrderItem[]
      for (const { sku, qty } of items)
        await tx.run('UPDATE inventory_stock SET available = available + $1 WHERE sku = $2', [qty, sku])
      await tx.run(`UPDATE inventory_reservations SET status = 'released', updated_at = $2 WHERE order_id = $1`, [
        orderId,
        Date.now(),
      ])
      return items.reduce((sum, i) => sum + i.qty, 0)
    })
    await broker.publish(InventoryReleased, { orderId }, { key: orderId, id: `inventory-released/${orderId}` })
    log.info({ orderId, units: released }, 'stock released')
  }

  const options = { from: 'earliest' as const, retry: { maxAttempts: 5 }, concurrency: 16, ordered: true }
  const subscriptions = [
    await broker.subscribe(InventoryReserve, onReserve, { ...options, group: 'inventory' }),
    await broker.subscribe(InventoryRelease, onRelease, { ...options, group: 'inventory' }),
  ]
  log.info('inventory service started')
  return {
    name: 'inventory',
    close: async () => {
      for (const s of subscriptions) await s.close()
      await base.close()
      await db.close()
    },
  }
}
