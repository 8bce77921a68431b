// Every service of the flow by name: what `order-flow <service>` runs in its own process, and what
// embedded mode starts side by side in one.
import type { Service } from '../lib/service.js'
import type { Runtime } from '../runtime.js'
import { startAnalytics } from './analytics.js'
import { startInventory } from './inventory.js'
import { startNotification } from './notification.js'
import { startOrders } from './orders.js'
import { startPayment } from './payment.js'
import { startShipping } from './shipping.js'

export interface ServiceSettings {
  /** HMAC key of the bridge's webhook calls to the notification service. */
  readonly webhookSecret: string
}

export const SERVICES = {
  orders: (runtime: Runtime) => startOrders(runtime),
  payment: (runtime: Runtime) => startPayment(runtime),
  inventory: (runtime: Runtime) => startInventory(runtime),
  shipping: (runtime: Runtime) => startShipping(runtime),
  analytics: (runtime: Runtime) => startAnalytics(runtime),
  notification: (runtime: Runtime, settings: ServiceSettings) =>
    startNotification(runtime, { secret: settings.webhookSecret }),
} satisfies Record<string, (runtime: Runtime, settings: ServiceSettings) => Promise<Service>>

export type ServiceName = keyof typeof SERVICES
export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[]
