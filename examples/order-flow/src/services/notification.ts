// notification: tells customers about their order. It does not touch the broker: the HTTP bridge
// pushes `orders.status` messages to its webhook (signed, retried, dead-lettered when it keeps
// failing), which is how a service in another language or another network would receive them.
import { createServer } from 'node:http'
import { withHttpLogging } from '@backplane/logging'
import { verifyWebhookSignature } from '@backplane/messaging/bridge'
import { closeServer, createRouter, HttpError, listen, parse, readBody } from '../lib/http.js'
import type { Service } from '../lib/service.js'
import { type Runtime, serviceLogger } from '../runtime.js'
import { OrdersStatus } from '../topics.js'

/** The states a customer hears about (the bridge subscription filters on the `order-state` header). */
export const NOTIFIED_STATES = ['paymentPending', 'shipping', 'delivered', 'cancelled'] as const

const NOTICES: Record<(typeof NOTIFIED_STATES)[number], (reason?: string) => string> = {
  paymentPending: () => 'we received your order',
  shipping: () => 'your order is on its way',
  delivered: () => 'your order was delivered',
  cancelled: (reason) => `your order was cancelled${reason ? ` (${reason})` : ''}`,
}

export async function startNotification(runtime: Runtime, { secret }: { readonly secret: string }): Promise<Service> {
  const log = serviceLogger(runtime, 'notification')
  const router = createRouter(
    [
      {
        method: 'POST',
        route: '/webhooks/order-status',
        handle: async (req, res) => {
          const body = await readBody(req)
          if (!verifyWebhookSignature(secret, body, req.headers['x-backplane-signature'] as string | undefined))
            throw new HttpError(401, 'BAD_SIGNATURE', 'X-Backplane-Signature does not sign this body')
          const status = parse(OrdersStatus.schema, JSON.parse(body.toString('utf8')), 'body')
          const notice = NOTICES[status.state as keyof typeof NOTICES]
          if (notice)
            log.info(
              {
                orderId: status.orderId,
                customerId: status.customerId,
                state: status.state,
                attempt: req.headers['x-backplane-attempt'],
              },
              `notified ${status.customerId}: ${notice(status.reason)}`,
            )
          res.writeHead(204).end()
        },
      },
    ],
    { log },
  )
  const server = createServer(withHttpLogging(log, router.handler, { route: router.routeOf }))
  const url = await listen(server, runtime.ports.notification ?? 0)
  log.info({ url }, 'notification service listening')
  return {
    name: 'notification',
    url,
    close: async () => {
      await closeServer(server)
      await log.close()
    },
  }
}
