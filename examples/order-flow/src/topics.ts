// Every message of the flow, with its schema. Publishers are checked, and a consumer that
// receives data failing the schema dead-letters it instead of retrying.
import { defineTopic, type Message, type Topic } from '@backplane/messaging'
import { z } from 'zod'

/** The message a handler of `topic` receives. */
export type MessageOf<T> = T extends Topic<infer D> ? Message<D> : never

export const OrderItem = z.object({ sku: z.string().min(1), qty: z.number().int().min(1).max(10) })
export type OrderItem = z.infer<typeof OrderItem>

const orderRef = { orderId: z.string().min(1) }

/** The workflow entered paymentPending: charge the customer. */
export const OrdersCreated = defineTopic(
  'orders.created',
  z.object({
    ...orderRef,
    customerId: z.string(),
    amountCents: z.number().int().positive(),
    items: z.array(OrderItem),
  }),
)
export const PaymentsCompleted = defineTopic('payments.completed', z.object({ ...orderRef, chargeId: z.string() }))
export const PaymentsFailed = defineTopic('payments.failed', z.object({ ...orderRef, reason: z.string() }))
/** Refund the order's charge, or void it when it has not happened yet (a late charge is then declined). */
export const PaymentsRefund = defineTopic('payments.refund', z.object({ ...orderRef, reason: z.string() }))
export const PaymentsRefunded = defineTopic(
  'payments.refunded',
  z.object({ ...orderRef, refundedCents: z.number().int().nonnegative() }),
)

export const InventoryReserve = defineTopic('inventory.reserve', z.object({ ...orderRef, items: z.array(OrderItem) }))
export const InventoryReserved = defineTopic('inventory.reserved', z.object(orderRef))
export const InventoryRejected = defineTopic('inventory.rejected', z.object({ ...orderRef, reason: z.string() }))
/** Give the order's stock back, or make sure a reservation that has not happened yet never does. */
export const InventoryRelease = defineTopic('inventory.release', z.object(orderRef))
export const InventoryReleased = defineTopic('inventory.released', z.object(orderRef))

export const ShipmentsCreate = defineTopic(
  'shipments.create',
  z.object({ ...orderRef, customerId: z.string(), items: z.array(OrderItem) }),
)
export const ShipmentsCreated = defineTopic('shipments.created', z.object({ ...orderRef, shipmentId: z.string() }))
export const ShipmentsDelivered = defineTopic('shipments.delivered', z.object({ ...orderRef, shipmentId: z.string() }))

export const OrderState = z.enum([
  'created',
  'paymentPending',
  'paid',
  'stockReserved',
  'shipping',
  'delivered',
  'releasing',
  'refunding',
  'cancelled',
])
export type OrderState = z.infer<typeof OrderState>

/** Every state an order enters, for the read model, notifications and the demo's live counts. */
export const OrdersStatus = defineTopic(
  'orders.status',
  z.object({
    ...orderRef,
    state: OrderState,
    customerId: z.string(),
    amountCents: z.number().int().nonnegative(),
    createdAt: z.number(),
    reason: z.string().optional(),
  }),
)
export type OrderStatus = z.infer<typeof OrdersStatus.schema>

export const FINAL_STATES: readonly OrderState[] = ['delivered', 'cancelled']

/**
 * Grows along every path of the order machine, so a consumer that sees statuses out of order (a
 * redelivery, two partitions) keeps the latest: apply a status only if its rank is higher.
 */
export const STATE_RANK: Readonly<Record<OrderState, number>> = {
  created: 0,
  paymentPending: 1,
  paid: 2,
  stockReserved: 3,
  releasing: 3,
  shipping: 4,
  refunding: 5,
  delivered: 6,
  cancelled: 6,
}
