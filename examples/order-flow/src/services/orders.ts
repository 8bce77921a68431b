// orders: the HTTP API customers call, and the owner of the `order` workflow. Placing an order
// commits the workflow instance, and with it the `orders.created` message in the same transaction
// (the outbox): there is no moment where the order exists and the message is lost, or the reverse.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { withHttpLogging } from '@backplane/logging'
import { createEngine, type Instance, WorkflowError } from '@backplane/workflow'
import { createInspector } from '@backplane/workflow/ui'
import { context, trace } from '@opentelemetry/api'
import { z } from 'zod'
import { productBySku } from '../catalog.js'
import { closeServer, createRouter, HttpError, listen, parse, readJson, sendJson } from '../lib/http.js'
import { type Service, startServiceBase } from '../lib/service.js'
import { ORDER_EVENTS, type OrderContext, orderMachine } from '../order-machine.js'
import { type Runtime, workflowStore } from '../runtime.js'
import { OrderItem, OrderState } from '../topics.js'

const PlaceOrder = z.strictObject({
  /** Optional client-chosen id: placing the same id again answers with the existing order (a safe retry). */
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'use 1-64 characters among A-Z a-z 0-9 _ -')
    .optional(),
  customerId: z.string().min(1).max(128),
  items: z
    .array(OrderItem.refine((i) => productBySku.has(i.sku), { message: 'unknown SKU', path: ['sku'] }))
    .min(1)
    .max(20),
})

const ListQuery = z.strictObject({
  state: OrderState.optional(),
  status: z.enum(['running', 'done', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().optional(),
})

function view(instance: Instance<OrderContext>) {
  const c = instance.context
  return {
    id: instance.id,
    state: instance.state,
    status: instance.status,
    customerId: c.customerId,
    items: c.items,
    amountCents: c.amountCents,
    chargeId: c.chargeId,
    shipmentId: c.shipmentId,
    reason: c.reason,
    traceId: c.traceId,
    createdAt: new Date(c.createdAt).toISOString(),
    updatedAt: instance.updatedAt.toISOString(),
  }
}

export async function startOrders(runtime: Runtime): Promise<Service> {
  const base = await startServiceBase(runtime, 'orders')
  const { log, broker, config } = base
  const order = orderMachine({ paymentTimeout: config.get('orders.paymentTimeout') })
  const engine = await createEngine({
    store: workflowStore(runtime, 'orders'),
    machines: [order],
    broker,
    // A stable owner: after a crash the restarted process takes its instances back at once.
    owner: 'orders',
    logger: log.child({ component: 'workflow' }),
    pollInterval: 250,
  })
  if (engine.recovered.instances > 0)
    log.info({ orders: engine.recovered.instances, ms: engine.recovered.ms }, 'resumed orders in flight')
  engine.events.on('transition', ({ instanceId, kind, event, from, to }) => {
    if (kind === 'ignored') log.info({ orderId: instanceId, state: from, event }, 'late event ignored')
    else if (kind === 'activity.attempt') log.warn({ orderId: instanceId, state: from, event }, 'activity will retry')
    else log.info({ orderId: instanceId, from, to }, `order ${to}`)
  })
  // SUBMIT follows `start` in a second commit: submit what a crash left in between.
  const submit = async (id: string) => {
    try {
      await engine.send(id, { type: 'SUBMIT', id: `submit/${id}` })
    } catch (error) {
      // Cancelled meanwhile: nothing to submit.
      if (!WorkflowError.is(error, 'WORKFLOW_EVENT_NOT_ACCEPTED')) throw error
    }
  }
  for (let page = await engine.list({ machine: 'order', state: 'created', limit: 1000 }); page.instances.length > 0; ) {
    for (const instance of page.instances) await submit(instance.id)
    log.info({ orders: page.instances.length }, 'submitted orders a crash left unsubmitted')
    if (page.next === null) break
    page = await engine.list({ machine: 'order', state: 'created', limit: 1000, after: page.next })
  }

  const listeners = await Promise.all(
    Object.entries(ORDER_EVENTS).map(([topic, type]) =>
      engine.listen(
        topic,
        (message) => {
          const data = message.data as { orderId?: unknown }
          if (typeof data?.orderId !== 'string') return undefined
          return { instance: data.orderId, event: { ...(data as object), type } }
        },
        {
          subscribe: { group: 'orders', from: 'earliest', concurrency: 32 },
          // A late answer (a payment after the order timed out) is recorded in the history, not dead-lettered.
          unhandledEvents: 'ignore',
        },
      ),
    ),
  )

  const getOrder = async (id: string) => view((await engine.get(id)) as Instance<OrderContext>)

  const router = createRouter(
    [
      {
        method: 'POST',
        route: '/orders',
        handle: async (req, res) => {
          const body = await readJson(req, PlaceOrder)
          const id = body.id ?? `ord-${randomUUID().slice(0, 12)}`
          const amountCents = body.items.reduce((sum, i) => sum + (productBySku.get(i.sku)?.priceCents ?? 0) * i.qty, 0)
          const traceId = trace.getSpanContext(context.active())?.traceId
          try {
            await engine.start(order, {
              id,
              input: {
                orderId: id,
                customerId: body.customerId,
                items: body.items,
                amountCents,
                createdAt: Date.now(),
                ...(traceId ? { traceId } : {}),
              },
            })
          } catch (error) {
            if (!WorkflowError.is(error, 'WORKFLOW_DUPLICATE_INSTANCE') || body.id === undefined) throw error
            // A retry: the first request may have died before its SUBMIT (the event id makes a second one a no-op).
            await submit(id)
            sendJson(res, 200, await getOrder(id))
            return
          }
          await submit(id)
          log.info({ orderId: id, customerId: body.customerId, amountCents }, 'order placed')
          sendJson(res, 201, await getOrder(id))
        },
      },
      {
        method: 'GET',
        route: '/orders',
        handle: async (_req, res, _params, url) => {
          const query = parse(ListQuery, Object.fromEntries(url.searchParams), 'query')
          const page = await engine.list<OrderContext>({ machine: 'order', ...query })
          sendJson(res, 200, { orders: page.instances.map((i) => view(i)), next: page.next })
        },
      },
      {
        method: 'GET',
        route: '/orders/:id',
        handle: async (_req, res, { id }) => {
          const order = await getOrder(id as string)
          const history = (await engine.history(id as string)).map((h) => ({
            at: h.at.toISOString(),
            kind: h.kind,
            event: (h.event as { type?: string } | null)?.type,
            from: h.from,
            to: h.to,
          }))
          sendJson(res, 200, { ...order, history })
        },
      },
      {
        method: 'POST',
        route: '/orders/:id/cancel',
        handle: async (_req, res, { id }) => {
          const result = await engine.send(id as string, { type: 'CANCEL', id: `cancel/${id}` })
          log.info({ orderId: id, state: result.instance.state }, 'order cancellation requested')
          sendJson(res, 202, view(result.instance as Instance<OrderContext>))
        },
      },
      {
        method: 'GET',
        route: '/healthz',
        handle: async (_req, res) => sendJson(res, 200, { ok: true, broker: broker.health().state }),
      },
    ],
    {
      log,
      onError: (error) => {
        if (WorkflowError.is(error, 'WORKFLOW_UNKNOWN_INSTANCE'))
          return new HttpError(404, 'ORDER_NOT_FOUND', error.message)
        if (WorkflowError.is(error, 'WORKFLOW_EVENT_NOT_ACCEPTED'))
          return new HttpError(409, 'ORDER_NOT_CANCELLABLE', 'the order is past the point where it can be cancelled')
        if (WorkflowError.is(error, 'WORKFLOW_STORE_UNAVAILABLE'))
          return new HttpError(503, 'STORE_UNAVAILABLE', 'the order store is unavailable: retry with the same order id')
        return undefined
      },
    },
  )

  // The workflow inspector under /workflows/: a read-only page over the order workflows, live. It
  // reads through a store handle of its own (opened on the first visit) and follows this engine.
  const inspector = createInspector({
    store: workflowStore(runtime, 'orders'),
    machines: [order],
    engine,
    basePath: '/workflows',
  })
  const server = createServer(
    withHttpLogging(log, (req, res) => inspector(req, res, () => router.handler(req, res)), {
      route: (req) => (req.url?.startsWith('/workflows') ? '/workflows/*' : router.routeOf(req)),
      ignore: (req) => req.url === '/healthz',
    }),
  )
  const url = await listen(server, runtime.ports.orders ?? 0)
  log.info({ url }, 'orders service listening')
  return {
    name: 'orders',
    url,
    close: async () => {
      await inspector.close()
      await closeServer(server)
      for (const l of listeners) await l.close()
      await engine.close()
      await base.close()
    },
  }
}
