/** A shop order machine and a few instances in different states, for the inspector's tests. */
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { createEngine, defineMachine, type Engine, NonRetryableError, type Store } from '../../src/index.js'

export const shopOrder = defineMachine({
  id: 'order',
  context: z.object({
    orderId: z.string(),
    amount: z.number(),
    note: z.string().optional(),
    chargeId: z.string().optional(),
  }),
  initial: 'created',
  on: { CANCEL: 'cancelled' },
  states: {
    created: { on: { SUBMIT: 'paying' } },
    paying: {
      invoke: {
        activity: 'charge',
        onDone: { target: 'shipping', assign: (_, e) => ({ chargeId: String(e.output) }) },
      },
      after: { '30m': 'cancelled' },
    },
    shipping: { on: { DELIVERED: 'delivered' }, after: { '2h': 'delivered' } },
    delivered: { type: 'final' },
    cancelled: { type: 'final' },
  },
})

/** Text that must show on the page as text and never run. */
export const HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'

/**
 * o-1 created · o-2 shipping (a 2h timer) · o-3 failed in paying (card declined) · o-4 delivered ·
 * o-5 shipping with a hostile note in its context.
 */
export async function seedOrders(store: Store): Promise<Engine> {
  const engine = await createEngine({
    store,
    machines: [shopOrder],
    pollInterval: 50,
    activities: {
      charge: async (input: { amount: number; orderId: string }) => {
        if (input.amount > 1000) throw new NonRetryableError('card declined')
        return `ch-${input.orderId}`
      },
    },
  })
  const order = async (id: string, amount: number, note?: string) =>
    engine.start(shopOrder, { id, input: { orderId: id, amount, ...(note ? { note } : {}) } })
  await order('o-1', 10)
  for (const [id, amount, note] of [
    ['o-2', 20],
    ['o-3', 5000],
    ['o-4', 40],
    ['o-5', 50, HOSTILE],
  ] as const) {
    await order(id, amount, note)
    await engine.send(id, { type: 'SUBMIT' })
  }
  await engine.waitFor('o-3', (i) => i.status === 'failed')
  for (const id of ['o-2', 'o-4', 'o-5']) await engine.waitFor(id, (i) => i.state === 'shipping')
  await engine.send('o-4', { type: 'DELIVERED' })
  return engine
}

/** Listens on 127.0.0.1 (any port); resolves with the base URL and a close that ends open connections. */
export async function serve(
  listener: RequestListener,
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
