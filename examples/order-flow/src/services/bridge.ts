// The HTTP bridge, configured by config/bridge.yaml. Embedded mode runs it inside the demo process;
// distributed mode runs the same file with the standalone `backplane-bridge` server.
import { join } from 'node:path'
import { startBridgeServer } from '@backplane/messaging/bridge'
import { CONFIG_DIR } from '../lib/paths.js'
import type { Service } from '../lib/service.js'
import { type Runtime, serviceLogger } from '../runtime.js'

export const BRIDGE_CONFIG = join(CONFIG_DIR, 'bridge.yaml')

/** The variables config/bridge.yaml reads. */
export function bridgeEnv(runtime: Runtime, notifyUrl: string, secret: string): Record<string, string> {
  return {
    ORDER_FLOW_BROKER_URL: runtime.brokerUrl,
    ORDER_FLOW_NOTIFY_URL: `${notifyUrl}/webhooks/order-status`,
    ORDER_FLOW_WEBHOOK_SECRET: secret,
    ORDER_FLOW_DATA_DIR: runtime.dataDir,
  }
}

export async function startBridge(runtime: Runtime, notifyUrl: string, secret: string): Promise<Service> {
  const log = serviceLogger(runtime, 'bridge')
  const server = await startBridgeServer({
    config: BRIDGE_CONFIG,
    env: { ...process.env, ...bridgeEnv(runtime, notifyUrl, secret) },
    port: runtime.ports.bridge ?? 0,
    logger: log,
  })
  log.info({ url: server.url }, 'bridge listening')
  return {
    name: 'bridge',
    url: server.url,
    close: async () => {
      await server.close()
      await log.close()
    },
  }
}
