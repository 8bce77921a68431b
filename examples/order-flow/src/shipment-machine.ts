// The shipping service's own workflow: a shipment is created, and the carrier reports it delivered
// `deliveryDelay` later. The delay is a durable timer: a restart of the service re-arms it from its
// deadline instead of forgetting it the way a setTimeout would.
import { defineMachine } from '@backplane/workflow'
import { z } from 'zod'
import { OrderItem } from './topics.js'

export const ShipmentContext = z.object({
  shipmentId: z.string(),
  orderId: z.string(),
  customerId: z.string(),
  items: z.array(OrderItem),
})
export type ShipmentContext = z.infer<typeof ShipmentContext>

export function shipmentMachine({ deliveryDelay }: { readonly deliveryDelay: string }) {
  return defineMachine({
    id: 'shipment',
    version: 1,
    context: ShipmentContext,
    initial: 'inTransit',
    states: {
      inTransit: {
        entry: {
          emit: (c) => ({
            topic: 'shipments.created',
            key: c.orderId,
            data: { orderId: c.orderId, shipmentId: c.shipmentId },
          }),
        },
        after: {
          [deliveryDelay]: {
            target: 'delivered',
            emit: (c) => ({
              topic: 'shipments.delivered',
              key: c.orderId,
              data: { orderId: c.orderId, shipmentId: c.shipmentId },
            }),
          },
        },
      },
      delivered: { type: 'final' },
    },
  })
}
