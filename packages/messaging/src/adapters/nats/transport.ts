import { type LoggerLike, silentLogger, type Transport } from '@backplane/messaging'
import { connectTo } from './connection.js'
import { coreTransport } from './core.js'
import { jetStreamTransport } from './jetstream.js'
import { type NatsTransportOptions, parseNatsOptions } from './options.js'
import { natsOptionsFromUrl } from './url.js'

/** Connects to NATS (core, or JetStream with `jetstream: true`) and returns a transport for createBrokerOver. */
export async function createNatsTransport(options: NatsTransportOptions): Promise<Transport> {
  const opts = parseNatsOptions(options)
  const logger = opts.logger ?? silentLogger
  const nc = await connectTo(opts)
  logger.info({ server: nc.getServer(), jetstream: opts.jetstream }, 'nats connected')
  return opts.jetstream ? jetStreamTransport(nc, opts, logger) : coreTransport(nc, opts, logger)
}

/** For createBroker('nats://...'): the URL's options, then the `nats` broker option over them. */
export async function createTransport(
  url: URL,
  options: { logger: LoggerLike | undefined; settings: Record<string, unknown> },
): Promise<Transport> {
  const fromUrl = natsOptionsFromUrl(url)
  const merged: Record<string, unknown> = { ...fromUrl, ...options.settings }
  if (options.logger !== undefined && merged.logger === undefined) merged.logger = options.logger
  return createNatsTransport(merged as NatsTransportOptions)
}
