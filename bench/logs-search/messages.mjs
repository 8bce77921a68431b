// Log lines like the order-flow example's services write (examples/order-flow/src/services), with
// the HTTP middleware's request lines mixed in: the fields and messages a search has to wade through.

const ROUTES = {
  orders: ['/orders', '/orders/:id', '/orders/:id/cancel'],
  payment: ['/payments', '/payments/:id/refund'],
  inventory: ['/stock/:sku', '/reservations'],
  shipping: ['/shipments/:id'],
  notification: ['/notify'],
  analytics: ['/revenue', '/orders/summary'],
}
const STATES = ['placed', 'reserved', 'paid', 'shipped', 'delivered', 'cancelled']
const REASONS = ['card declined', 'insufficient funds', 'out of stock', 'address invalid']

const INFO = {
  orders: [
    (r, h) => ({
      fields: { orderId: `o-${h(10)}`, customerId: `c-${h(6)}`, amountCents: Math.floor(r() * 90000) },
      msg: 'order placed',
    }),
    (r, h) => {
      const to = STATES[Math.floor(r() * STATES.length)]
      return { fields: { orderId: `o-${h(10)}`, from: 'placed', to }, msg: `order ${to}` }
    },
    (_r, h) => ({ fields: { orderId: `o-${h(10)}`, state: 'paid', event: 'PAYMENT_DONE' }, msg: 'late event ignored' }),
  ],
  payment: [
    (r, h) => ({
      fields: { orderId: `o-${h(10)}`, chargeId: `ch_${h(14)}`, amountCents: Math.floor(r() * 90000) },
      msg: 'payment completed',
    }),
    (r, h) => ({ fields: { orderId: `o-${h(10)}`, reason: REASONS[Math.floor(r() * 2)] }, msg: 'payment failed' }),
    (r, h) => ({
      fields: { orderId: `o-${h(10)}`, refundedCents: Math.floor(r() * 9000), reason: 'customer request' },
      msg: 'payment refunded',
    }),
  ],
  inventory: [
    (_r, h) => ({ fields: { orderId: `o-${h(10)}` }, msg: 'stock reserved' }),
    (r, h) => ({ fields: { orderId: `o-${h(10)}`, units: 1 + Math.floor(r() * 5) }, msg: 'stock released' }),
    (_r, h) => ({ fields: { orderId: `o-${h(10)}`, reason: 'out of stock' }, msg: 'stock reservation rejected' }),
  ],
  shipping: [
    (_r, h) => ({ fields: { orderId: `o-${h(10)}`, shipmentId: `s-${h(10)}` }, msg: 'shipment created' }),
    (_r, h) => ({ fields: { shipment: `s-${h(10)}` }, msg: 'shipment delivered' }),
  ],
  notification: [
    (r, h) => ({
      fields: { orderId: `o-${h(10)}`, channel: r() < 0.7 ? 'email' : 'sms', template: 'order-update' },
      msg: 'notification sent',
    }),
  ],
  analytics: [
    (_r, h) => ({ fields: { orderId: `o-${h(10)}`, state: 'paid' }, msg: 'order view updated' }),
    (r, h) => ({ fields: { orderId: `o-${h(10)}`, amountCents: Math.floor(r() * 90000) }, msg: 'revenue recorded' }),
  ],
}

function request(service, r) {
  const routes = ROUTES[service] ?? ['/']
  const status = r() < 0.93 ? 200 : r() < 0.7 ? 404 : 503
  return {
    fields: {
      req: { method: r() < 0.6 ? 'GET' : 'POST', url: routes[Math.floor(r() * routes.length)] },
      res: { statusCode: status },
      responseTime: Math.round(r() * 25000) / 100,
    },
    msg: 'request completed',
  }
}

/** Fields and message of one line of `service` at `level`; `r` is the seeded random, `h(n)` n hex digits. */
export function messageFor(service, level, r, h) {
  if (level === 'warn') {
    return r() < 0.5
      ? { fields: { orderId: `o-${h(10)}`, state: 'reserved', event: 'CHARGE' }, msg: 'activity will retry' }
      : { fields: { event: { id: h(12), topic: `${service}.events` } }, msg: 'message dead-lettered' }
  }
  if (level === 'error') {
    return {
      fields: {
        err: { type: 'Error', message: 'connect ECONNREFUSED 10.0.3.7:5432' },
        attempt: 1 + Math.floor(r() * 4),
      },
      msg: 'activity failed',
    }
  }
  if (level === 'debug') return { fields: { broker: 'nats', pending: Math.floor(r() * 40) }, msg: 'poll tick' }
  if (r() < 0.45) return request(service, r)
  const own = INFO[service] ?? INFO.orders
  return own[Math.floor(r() * own.length)](r, h)
}
