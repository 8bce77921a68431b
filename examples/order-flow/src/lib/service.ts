// What every service starts with: its logger (service.name on every line, its own log files), its
// configuration (watched) and its connection to the broker. `close` releases them in reverse order.
import type { Config } from '@backplane/config-client'
import type { Logger } from '@backplane/logging'
import { type Broker, createBroker } from '@backplane/messaging'
import { loadConfig, type OrderFlowConfig } from '../config.js'
import { type Runtime, serviceLogger } from '../runtime.js'

export interface Service {
  readonly name: string
  /** Base URL of its HTTP server, when it has one. */
  readonly url?: string | undefined
  close(): Promise<void>
}

export interface ServiceBase {
  readonly log: Logger
  readonly config: Config<OrderFlowConfig>
  readonly broker: Broker
  close(): Promise<void>
}

export async function startServiceBase(runtime: Runtime, name: string): Promise<ServiceBase> {
  const log = serviceLogger(runtime, name)
  try {
    const config = await loadConfig(runtime, name)
    config.on('change', ({ changes, source }) =>
      log.info(
        { source, changes: changes.map((c) => `${c.path}: ${JSON.stringify(c.prev)} -> ${JSON.stringify(c.next)}`) },
        'configuration changed',
      ),
    )
    config.on('invalid', (error) => log.warn({ err: error.message }, 'configuration update rejected'))
    const broker = await createBroker(runtime.brokerUrl, { logger: log.child({ component: 'messaging' }) })
    broker.events.on('deadLetter', (event) => log.warn({ event }, 'message dead-lettered'))
    return {
      log,
      config,
      broker,
      close: async () => {
        await broker.close()
        await config.close()
        await log.close()
      },
    }
  } catch (error) {
    log.error({ err: error }, `${name} could not start`)
    await log.close()
    throw error
  }
}
