// The order saga. Every step is a state committed to the workflow store before its message goes
// out (through the outbox), so a crash anywhere resumes exactly where it was:
//
//   created → paymentPending → paid → stockReserved → shipping → delivered
//   paymentPending: payment failed → cancelled; no answer in time, or CANCEL → refunding
//   paid: out of stock → refunding (compensation); CANCEL → releasing → refunding
//   refunding → cancelled
import { defineMachine, type OutboxMessage } from '@backplane/workflow'
import { z } from 'zod'
import { OrderItem, type OrderState } from './topics.js'

export const OrderContext = z.object({
  orderId: z.string(),
  customerId: z.string(),
  items: z.array(OrderItem).min(1),
  amountCents: z.number().int().positive(),
  createdAt: z.number(),
  /** The trace of the request that placed the order: `GET /orders/:id` shows it, `backplane-logs trace` follows it. */
  traceId: z.string().optional(),
  chargeId: z.string().optional(),
  shipmentId: z.string().optional(),
  reason: z.string().optional(),
})
export type OrderContext = z.infer<typeof OrderContext>

const reasonOf = (event: object, fallback: string) => {
  const reason = (event as { reason?: unknown }).reason
  return typeof reason === 'string' ? reason : fallback
}

const shipmentOf = (_: OrderContext, e: object) => ({ shipmentId: String((e as { shipmentId?: unknown }).shipmentId) })

/** The `orders.status` message for a state: the read model, notifications and the demo follow these. */
const status =
  (state: OrderState) =>
  (c: OrderContext): OutboxMessage => ({
    topic: 'orders.status',
    key: c.orderId,
    // A header the bridge's webhook subscription filters on (notification wants only some states).
    headers: { 'order-state': state },
    data: {
      orderId: c.orderId,
      state,
      customerId: c.customerId,
      amountCents: c.amountCents,
      createdAt: c.createdAt,
      ...(c.reason === undefined ? {} : { reason: c.reason }),
    },
  })

/** Entry action: the state's status message plus, optionally, the command it sends. */
const enter = (state: OrderState, command?: (c: OrderContext) => OutboxMessage) => ({
  emit: (c: OrderContext) => (command ? [status(state)(c), command(c)] : [status(state)(c)]),
})

export interface OrderMachineOptions {
  /** How long to wait for the payment service before giving up on the order ("30s"). */
  readonly paymentTimeout: string
}

export function orderMachine({ paymentTimeout }: OrderMachineOptions) {
  return defineMachine({
    id: 'order',
    version: 1,
    context: OrderContext,
    initial: 'created',
    states: {
      created: {
        entry: enter('created'),
        on: {
          SUBMIT: 'paymentPending',
          CANCEL: { target: 'cancelled', assign: () => ({ reason: 'cancelled by customer' }) },
        },
      },
      paymentPending: {
        entry: enter('paymentPending', (c) => ({
          topic: 'orders.created',
          key: c.orderId,
          data: { orderId: c.orderId, customerId: c.customerId, amountCents: c.amountCents, items: c.items },
        })),
        on: {
          PAYMENT_COMPLETED: {
            target: 'paid',
            assign: (_, e) => ({ chargeId: String((e as { chargeId?: unknown }).chargeId) }),
          },
          PAYMENT_FAILED: { target: 'cancelled', assign: (_, e) => ({ reason: reasonOf(e, 'payment failed') }) },
          // The charge may still be on its way: refunding voids it, so a late charge is declined.
          CANCEL: { target: 'refunding', assign: () => ({ reason: 'cancelled by customer' }) },
        },
        after: { [paymentTimeout]: { target: 'refunding', assign: () => ({ reason: 'payment timed out' }) } },
      },
      paid: {
        entry: enter('paid', (c) => ({
          topic: 'inventory.reserve',
          key: c.orderId,
          data: { orderId: c.orderId, items: c.items },
        })),
        on: {
          STOCK_RESERVED: 'stockReserved',
          // Compensation: the customer was charged for stock we do not have.
          STOCK_REJECTED: { target: 'refunding', assign: (_, e) => ({ reason: reasonOf(e, 'out of stock') }) },
          CANCEL: { target: 'releasing', assign: () => ({ reason: 'cancelled by customer' }) },
        },
      },
      stockReserved: {
        entry: enter('stockReserved', (c) => ({
          topic: 'shipments.create',
          key: c.orderId,
          data: { orderId: c.orderId, customerId: c.customerId, items: c.items },
        })),
        on: {
          SHIPMENT_CREATED: { target: 'shipping', assign: shipmentOf },
          // Messages of two topics have no order between them: a redelivered `shipments.created`
          // can arrive after `shipments.delivered`. The delivery says all there is to know.
          DELIVERED: { target: 'delivered', assign: shipmentOf },
        },
      },
      shipping: {
        entry: enter('shipping'),
        on: { DELIVERED: 'delivered' },
      },
      releasing: {
        entry: enter('releasing', (c) => ({
          topic: 'inventory.release',
          key: c.orderId,
          data: { orderId: c.orderId },
        })),
        on: { STOCK_RELEASED: 'refunding' },
      },
      refunding: {
        entry: enter('refunding', (c) => ({
          topic: 'payments.refund',
          key: c.orderId,
          data: { orderId: c.orderId, reason: c.reason ?? 'refund' },
        })),
        on: { REFUNDED: 'cancelled' },
      },
      delivered: { type: 'final', entry: enter('delivered') },
      cancelled: { type: 'final', entry: enter('cancelled') },
    },
  })
}

/** Broker topic → the order event it becomes (`engine.listen`). */
export const ORDER_EVENTS = {
  'payments.completed': 'PAYMENT_COMPLETED',
  'payments.failed': 'PAYMENT_FAILED',
  'payments.refunded': 'REFUNDED',
  'inventory.reserved': 'STOCK_RESERVED',
  'inventory.rejected': 'STOCK_REJECTED',
  'inventory.released': 'STOCK_RELEASED',
  'shipments.created': 'SHIPMENT_CREATED',
  'shipments.delivered': 'DELIVERED',
} as const
