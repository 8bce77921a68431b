// The configuration every service reads: one zod schema, layered from the YAML file, the
// environment (ORDER_FLOW_PAYMENT__FAILURE_RATE=0.2) and, in distributed mode, etcd, which is
// watched: a change to payment.failureRate reaches the payment service while it runs.
import { type Config, createConfig, env, file } from '@backplane/config-client'
import { z } from 'zod'
import type { Runtime } from './runtime.js'

export const OrderFlowConfig = z.object({
  payment: z
    .object({
      /** Share of charges the simulated provider declines (0..1). */
      failureRate: z.number().min(0).max(1).default(0.05),
      /** Simulated provider latency: each charge takes between min and max ms. */
      latencyMs: z
        .object({ min: z.number().int().min(0).default(5), max: z.number().int().min(0).default(40) })
        .prefault({}),
    })
    .prefault({}),
  orders: z
    .object({
      /** How long an order waits for its payment before it is cancelled (a durable timer). */
      paymentTimeout: z.string().default('30s'),
    })
    .prefault({}),
  shipping: z
    .object({
      /** How long after the shipment is created the carrier reports it delivered (a durable timer). */
      deliveryDelay: z.string().default('2s'),
    })
    .prefault({}),
  inventory: z
    .object({
      /** Stock each SKU starts with when the inventory table is created (see catalog.ts for per-SKU overrides). */
      initialStock: z.number().int().min(0).default(10_000),
    })
    .prefault({}),
})

export type OrderFlowConfig = z.infer<typeof OrderFlowConfig>

/** The configuration of one service, watched for as long as the service runs. */
export async function loadConfig(runtime: Runtime, service: string): Promise<Config<OrderFlowConfig>> {
  const sources = [file(runtime.configFile, { optional: true }), env({ prefix: 'ORDER_FLOW_' })]
  if (runtime.etcdEndpoints) {
    const { etcd } = await import('@backplane/config-client/etcd')
    sources.push(etcd({ prefix: runtime.etcdPrefix, endpoints: runtime.etcdEndpoints }))
  }
  return createConfig({
    schema: OrderFlowConfig,
    sources,
    snapshot: `${runtime.dataDir}/${service}.config-snapshot.json`,
    // Seven processes start at once (each loading its OpenTelemetry SDK): on a busy two-core
    // machine etcd's first answer took over the default 5 s, and a first start has no snapshot.
    startTimeout: 15_000,
  })
}
