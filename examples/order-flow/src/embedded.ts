// Embedded mode: every service of the flow in this one process, on memory:// messaging, SQLite
// files and the config file. The services are the same modules distributed mode runs one per process.
import type { Service } from './lib/service.js'
import type { Runtime } from './runtime.js'
import { startBridge } from './services/bridge.js'
import { SERVICE_NAMES, SERVICES } from './services/index.js'

export interface Embedded {
  readonly urls: {
    readonly orders: string
    readonly analytics: string
    readonly notification: string
    readonly bridge: string
  }
  readonly services: ReadonlyMap<string, Service>
  close(): Promise<void>
}

export async function startEmbedded(
  runtime: Runtime,
  { webhookSecret = 'order-flow-demo-secret' } = {},
): Promise<Embedded> {
  const services = new Map<string, Service>()
  const close = async () => {
    // The bridge and the order API first (nothing new comes in), the consumers last.
    for (const name of ['bridge', 'orders', ...SERVICE_NAMES]) {
      const service = services.get(name)
      services.delete(name)
      await service?.close()
    }
  }
  try {
    for (const name of SERVICE_NAMES) services.set(name, await SERVICES[name](runtime, { webhookSecret }))
    const notification = services.get('notification')?.url as string
    services.set('bridge', await startBridge(runtime, notification, webhookSecret))
  } catch (error) {
    await close()
    throw error
  }
  const url = (name: string) => services.get(name)?.url as string
  return {
    urls: {
      orders: url('orders'),
      analytics: url('analytics'),
      notification: url('notification'),
      bridge: url('bridge'),
    },
    services,
    close,
  }
}
