import { type LoggerLike, MessagingError } from '@backplane/messaging'
import { connect, type NatsConnection, type NodeConnectionOptions, type TlsOptions } from '@nats-io/transport-node'
import { errorText } from './errors.js'
import type { ResolvedNatsOptions } from './options.js'
import { withTimeout } from './timeouts.js'

function connectionOptions(opts: ResolvedNatsOptions): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: opts.servers,
    maxReconnectAttempts: opts.maxReconnectAttempts,
    reconnectTimeWait: opts.reconnectTimeWait,
    timeout: opts.connectTimeout,
    // Subscriptions re-sent on reconnect are what brings core NATS subscribers back.
    reconnect: true,
    // Otherwise nats.js makes an Error per request (JetStream API calls, consumer info), capturing
    // the caller's stack, in case the request fails. Our failures are MessagingErrors thrown from
    // our own call (its stack) with nats.js's error as the cause.
    noAsyncTraces: true,
  }
  if (opts.name !== undefined) options.name = opts.name
  if (opts.user !== undefined) options.user = opts.user
  if (opts.pass !== undefined) options.pass = opts.pass
  if (opts.token !== undefined) options.token = opts.token
  if (opts.tls !== undefined && opts.tls !== false) options.tls = tlsOptions(opts.tls)
  return options
}

function tlsOptions(tls: Exclude<ResolvedNatsOptions['tls'], boolean | undefined> | true): TlsOptions {
  const options: TlsOptions = {}
  if (tls === true) return options
  for (const [name, value] of Object.entries(tls)) if (value !== undefined) Object.assign(options, { [name]: value })
  return options
}

export async function connectTo(opts: ResolvedNatsOptions): Promise<NatsConnection> {
  try {
    return await connect(connectionOptions(opts))
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_CONNECTION_FAILED',
      `could not connect to NATS at ${opts.servers.join(', ')}: ${errorText(error)}`,
      { cause: error },
    )
  }
}

export async function drain(nc: NatsConnection, timeoutMs: number, logger: LoggerLike): Promise<void> {
  if (nc.isClosed()) return
  try {
    await withTimeout(nc.drain(), timeoutMs, 'draining the NATS connection')
  } catch (error) {
    // Draining needs the server; while it is away just close.
    logger.debug({ err: errorText(error) }, 'nats drain failed; closing')
    await nc.close().catch(() => undefined)
  }
}
