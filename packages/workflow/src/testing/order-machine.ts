/** The order example the conformance suite drives over a store (also the package's own test fixture). */
import { z } from 'zod'
import { defineMachine } from '../machine.js'

export const OrderContext = z.object({
  orderId: z.string(),
  amount: z.number().positive(),
  chargeId: z.string().optional(),
  refundId: z.string().optional(),
  reason: z.string().optional(),
})

/** The order example, with the saga: a failed stock reservation refunds the charge. */
export const order = defineMachine({
  id: 'order',
  version: 1,
  context: OrderContext,
  initial: 'created',
  states: {
    created: {
      on: {
        SUBMIT: 'paymentPending',
        CANCEL: { target: 'cancelled', assign: () => ({ reason: 'cancelled by customer' }) },
      },
    },
    paymentPending: {
      invoke: {
        activity: 'chargeCard',
        input: (c) => ({ orderId: c.orderId, amount: c.amount }),
        onDone: { target: 'paid', assign: (_, e) => ({ chargeId: (e.output as { chargeId: string }).chargeId }) },
        onError: { target: 'cancelled', assign: (_, e) => ({ reason: e.error.message }) },
      },
      after: { '30m': { target: 'cancelled', assign: () => ({ reason: 'payment timed out' }) } },
    },
    paid: {
      invoke: {
        activity: 'reserveStock',
        input: (c) => ({ orderId: c.orderId }),
        onDone: 'shipping',
        onError: { target: 'refunding', assign: (_, e) => ({ reason: e.error.message }) },
      },
    },
    refunding: {
      invoke: {
        activity: 'refund',
        input: (c) => ({ chargeId: c.chargeId }),
        onDone: { target: 'cancelled', assign: (_, e) => ({ refundId: (e.output as { refundId: string }).refundId }) },
      },
    },
    shipping: {
      entry: { emit: (c) => ({ topic: 'orders.shipped', key: c.orderId, data: { orderId: c.orderId } }) },
      on: { DELIVERED: 'delivered' },
    },
    delivered: { type: 'final' },
    cancelled: { type: 'final' },
  },
})
