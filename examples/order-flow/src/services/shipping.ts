// shipping: creates a shipment for each order whose stock is reserved, as an instance of its own
// `shipment` workflow. The carrier's delivery report comes `shipping.deliveryDelay` later from a
// durable timer in the workflow store, so a restart of this service delays nothing and loses nothing.
import { createEngine, WorkflowError } from '@backplane/workflow'
import { type Service, startServiceBase } from '../lib/service.js'
import { type Runtime, workflowStore } from '../runtime.js'
import { shipmentMachine } from '../shipment-machine.js'
import { type MessageOf, ShipmentsCreate } from '../topics.js'

export async function startShipping(runtime: Runtime): Promise<Service> {
  const base = await startServiceBase(runtime, 'shipping')
  const { log, broker, config } = base
  const shipment = shipmentMachine({ deliveryDelay: config.get('shipping.deliveryDelay') })
  const engine = await createEngine({
    store: workflowStore(runtime, 'shipping'),
    machines: [shipment],
    broker,
    owner: 'shipping',
    logger: log.child({ component: 'workflow' }),
    pollInterval: 250,
  })
  engine.events.on('instanceDone', ({ instanceId }) => log.info({ shipment: instanceId }, 'shipment delivered'))
  if (engine.recovered.instances > 0)
    log.info({ shipments: engine.recovered.instances, ms: engine.recovered.ms }, 'resumed shipments in transit')

  const onCreate = async ({ data: { orderId, customerId, items } }: MessageOf<typeof ShipmentsCreate>) => {
    const shipmentId = `shp-${orderId}`
    try {
      await engine.start(shipment, { id: shipmentId, input: { shipmentId, orderId, customerId, items } })
      log.info({ orderId, shipmentId }, 'shipment created')
    } catch (error) {
      // A redelivered request: the shipment exists and its `shipments.created` went out with it.
      if (!WorkflowError.is(error, 'WORKFLOW_DUPLICATE_INSTANCE')) throw error
    }
  }
  const subscription = await broker.subscribe(ShipmentsCreate, onCreate, {
    group: 'shipping',
    from: 'earliest',
    retry: { maxAttempts: 5 },
    concurrency: 16,
  })
  log.info({ deliveryDelay: config.get('shipping.deliveryDelay') }, 'shipping service started')
  return {
    name: 'shipping',
    close: async () => {
      await subscription.close()
      await engine.close()
      await base.close()
    },
  }
}
