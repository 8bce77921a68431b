// payment: charges the customer when an order is created, refunds (or voids) when the order saga
// asks. Its own table says what happened to each order's payment, so a redelivered message
// publishes the same answer again instead of charging again; the provider's idempotency key covers
// a crash between the charge and that table.

import { type Service, startServiceBase } from '../lib/service.js'
import type { Runtime } from '../runtime.js'
import { serviceDb } from '../runtime.js'
import {
  type MessageOf,
  OrdersCreated,
  PaymentsCompleted,
  PaymentsFailed,
  PaymentsRefund,
  PaymentsRefunded,
} from '../topics.js'
import { PROVIDER_SCHEMA, paymentProvider } from './payment-provider.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS payment_charges (
  order_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  charge_id TEXT,
  reason TEXT,
  updated_at BIGINT NOT NULL
);
${PROVIDER_SCHEMA}`

type ChargeStatus = 'charged' | 'declined' | 'refunded' | 'voided'
interface ChargeRow {
  status: ChargeStatus
  amount_cents: number
  charge_id: string | null
  reason: string | null
}

export async function startPayment(runtime: Runtime): Promise<Service> {
  const base = await startServiceBase(runtime, 'payment')
  const { log, broker, config } = base
  const db = serviceDb(runtime, 'payment')
  await db.exec(SCHEMA)
  const provider = paymentProvider(db, () => config.get('payment'))

  const row = async (orderId: string) =>
    (
      await db.query<ChargeRow>(
        'SELECT status, amount_cents, charge_id, reason FROM payment_charges WHERE order_id = $1',
        [orderId],
      )
    )[0]

  // Message ids are derived from the order, so a second publish of the same answer is one event
  // to the order workflow (it de-duplicates on the id).
  const answerCharge = async (orderId: string, charge: ChargeRow) => {
    if (charge.status === 'charged') {
      await broker.publish(
        PaymentsCompleted,
        { orderId, chargeId: charge.charge_id ?? '' },
        { key: orderId, id: `payment-completed/${orderId}` },
      )
      log.info({ orderId, chargeId: charge.charge_id, amountCents: charge.amount_cents }, 'payment completed')
    } else {
      const reason = charge.reason ?? (charge.status === 'declined' ? 'card declined' : 'order cancelled')
      await broker.publish(PaymentsFailed, { orderId, reason }, { key: orderId, id: `payment-failed/${orderId}` })
      log.info({ orderId, reason }, 'payment failed')
    }
  }

  const onOrderCreated = async ({ data }: MessageOf<typeof OrdersCreated>) => {
    const { orderId, amountCents } = data
    const known = await row(orderId)
    if (known) return answerCharge(orderId, known)
    const result = await provider.charge(`charge/${orderId}`, orderId, amountCents)
    const status: ChargeStatus = result.outcome === 'succeeded' ? 'charged' : 'declined'
    const inserted = await db.run(
      `INSERT INTO payment_charges (order_id, status, amount_cents, charge_id, reason, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (order_id) DO NOTHING`,
      [
        orderId,
        status,
        amountCents,
        result.outcome === 'succeeded' ? result.id : null,
        status === 'declined' ? 'card declined' : null,
        Date.now(),
      ],
    )
    // Lost the insert: to a void (the order was cancelled or timed out while the provider was
    // charging: give the money back), or to a copy of this message handled at the same time (the
    // same charge, by its idempotency key: nothing to do).
    if (inserted === 0 && status === 'charged' && (await row(orderId))?.status === 'voided') {
      const refund = await provider.refund(`refund/${orderId}`, orderId, amountCents)
      await db.run(
        `UPDATE payment_charges SET status = 'refunded', amount_cents = $2, charge_id = $3, updated_at = $4
         WHERE order_id = $1 AND status = 'voided'`,
        [orderId, amountCents, result.id, Date.now()],
      )
      log.warn({ orderId, refundId: refund.id }, 'charged an order that was voided meanwhile: refunded it')
    }
    return answerCharge(orderId, (await row(orderId)) as ChargeRow)
  }

  const onRefund = async ({ data }: MessageOf<typeof PaymentsRefund>) => {
    const { orderId, reason } = data
    // Nothing charged yet: record a void, so a charge request still on its way is declined.
    await db.run(
      `INSERT INTO payment_charges (order_id, status, amount_cents, charge_id, reason, updated_at)
       VALUES ($1, 'voided', 0, NULL, $2, $3) ON CONFLICT (order_id) DO NOTHING`,
      [orderId, reason, Date.now()],
    )
    const charge = (await row(orderId)) as ChargeRow
    let refundedCents = 0
    if (charge.status === 'charged') {
      await provider.refund(`refund/${orderId}`, orderId, charge.amount_cents)
      await db.run(
        `UPDATE payment_charges SET status = 'refunded', reason = $2, updated_at = $3 WHERE order_id = $1 AND status = 'charged'`,
        [orderId, reason, Date.now()],
      )
      refundedCents = charge.amount_cents
    } else if (charge.status === 'refunded') {
      refundedCents = charge.amount_cents
    }
    await broker.publish(
      PaymentsRefunded,
      { orderId, refundedCents },
      { key: orderId, id: `payment-refunded/${orderId}` },
    )
    log.info({ orderId, refundedCents, reason }, refundedCents > 0 ? 'payment refunded' : 'payment voided')
  }

  const options = { from: 'earliest' as const, retry: { maxAttempts: 5 }, concurrency: 16, ordered: true }
  const subscriptions = [
    await broker.subscribe(OrdersCreated, onOrderCreated, { ...options, group: 'payment' }),
    await broker.subscribe(PaymentsRefund, onRefund, { ...options, group: 'payment' }),
  ]
  log.info({ broker: broker.health().system }, 'payment service started')
  return {
    name: 'payment',
    close: async () => {
      for (const s of subscriptions) await s.close()
      await base.close()
      await db.close()
    },
  }
}
