import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIP } from 'node:net'
import type { LoggerLike } from '@backplane/messaging'
import { type Bridge, createBridge } from './bridge.js'
import { answerClientError } from './client-error.js'
import { type BridgeConfig, loadBridgeConfig } from './config.js'
import { BridgeError } from './errors.js'

export interface BridgeServerOptions {
  /** A config file path, or a config loaded with loadBridgeConfig. */
  config: string | BridgeConfig
  /** Overrides `listen.host`. */
  host?: string | undefined
  /** Overrides `listen.port`; 0 picks a free port. */
  port?: number | undefined
  /** Allow no API keys on a non-loopback address. */
  insecure?: boolean | undefined
  logger?: LoggerLike | undefined
  env?: NodeJS.ProcessEnv | undefined
}

export interface BridgeServer {
  readonly bridge: Bridge
  readonly server: Server
  /** `http://host:port` */
  readonly url: string
  readonly port: number
  /** Stops accepting, closes the bridge (in-flight work finishes), then the connections. */
  close(): Promise<void>
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1'
}

/**
 * The standalone server (what `backplane-bridge` runs): the bridge on its own node:http server.
 * Without API keys it listens on a loopback address only, unless `insecure`.
 * Resolves once listening and ready.
 */
export async function startBridgeServer(options: BridgeServerOptions): Promise<BridgeServer> {
  const config =
    typeof options.config === 'string' ? await loadBridgeConfig(options.config, options.env) : options.config
  const host = options.host ?? config.listen.host
  const port = options.port ?? config.listen.port
  const keys = config.options.auth?.keys ?? []
  const insecure = options.insecure === true || config.options.insecure === true
  if (keys.length === 0 && !insecure && !isLoopback(host)) {
    throw new BridgeError(
      500,
      'BRIDGE_INSECURE',
      `refusing to listen on ${host} without API keys: anyone who reaches it could publish and subscribe. Add auth.keys to the config, listen on 127.0.0.1, or pass --insecure on a trusted network`,
    )
  }
  const logger = options.logger ?? config.options.logger
  if (keys.length === 0) {
    logger?.warn(
      { host },
      insecure
        ? 'no API keys: every request is accepted (insecure)'
        : 'no API keys: accepting requests on loopback only',
    )
  }
  const bridge = createBridge({ ...config.options, insecure: keys.length === 0, ...(logger ? { logger } : {}) })
  const server = createServer(bridge.handler)
  server.on('clientError', answerClientError)
  server.requestTimeout = 60_000
  server.headersTimeout = 30_000
  server.keepAliveTimeout = 65_000
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    await bridge.ready
  } catch (error) {
    server.close()
    await bridge.close()
    throw error
  }
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<void> | undefined
  return {
    bridge,
    server,
    url: `http://${shown}:${address.port}`,
    port: address.port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        await bridge.close()
        server.closeAllConnections()
        await closed
      })()
      return closing
    },
  }
}
