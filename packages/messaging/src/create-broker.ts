import { loadPeer } from '@backplane/internal'
import { type Broker, createBrokerOver } from './broker.js'
import { MessagingError } from './errors.js'
import type { BrokerOptions } from './options.js'
import type { LoggerLike, Transport } from './transport.js'

/** What an adapter module exports for createBroker. */
export interface AdapterModule {
  createTransport(
    url: URL,
    options: { logger: LoggerLike | undefined; settings: Record<string, unknown> },
  ): Promise<Transport>
}

interface AdapterEntry {
  specifier: string
  /** The packages its adapter imports: all of them are named when one is missing. */
  clients: readonly string[] | undefined
  settings: 'kafka' | 'nats' | 'memory'
}

// Loaded by package name so each adapter stays a separate file: a NATS user never loads kafkajs.
const ADAPTERS: Record<string, AdapterEntry> = {
  'memory:': { specifier: '@backplane/messaging/memory', clients: undefined, settings: 'memory' },
  'kafka:': { specifier: '@backplane/messaging/kafka', clients: ['kafkajs'], settings: 'kafka' },
  'nats:': {
    specifier: '@backplane/messaging/nats',
    clients: ['@nats-io/transport-node', '@nats-io/jetstream'],
    settings: 'nats',
  },
}

const AUTHORITY = /^([a-z][a-z0-9+.-]*:)\/\/(?:([^@/?#]*)@)?([^/?#]*)(.*)$/i

/**
 * Parses a broker URL. A list of hosts with ports (`kafka://h1:9092,h2:9092`) is not a valid
 * URL host, so the list is percent-encoded into one opaque host: adapters read it back with
 * `decodeURIComponent(url.hostname)`.
 */
export function parseBrokerUrl(url: string): URL {
  const m = AUTHORITY.exec(url)
  const hosts = m?.[3] ?? ''
  const text =
    m && hosts.includes(',')
      ? `${m[1]}//${m[2] === undefined ? '' : `${m[2]}@`}${encodeURIComponent(hosts)}${m[4]}`
      : url
  try {
    return new URL(text)
  } catch (error) {
    throw new MessagingError(
      'MESSAGING_INVALID_URL',
      `invalid broker URL ${JSON.stringify(url)}: expected memory://, kafka://host:9092[,host2:9092] or nats://host:4222[,host2:4222][?jetstream=true]`,
      { cause: error },
    )
  }
}

/**
 * Connects to the broker the URL names: `memory://[name]`, `kafka://h1:9092,h2:9092`,
 * `nats://h:4222` (core NATS, at most once) or `nats://h:4222?jetstream=true` (JetStream).
 * Fails with MESSAGING_CLIENT_MISSING, naming the package to install, when the adapter's client
 * library is not installed.
 */
export async function createBroker(url: string, options: BrokerOptions = {}): Promise<Broker> {
  if (typeof url !== 'string')
    throw new MessagingError('MESSAGING_INVALID_URL', 'createBroker: expected a broker URL string')
  const parsed = parseBrokerUrl(url)
  const entry = ADAPTERS[parsed.protocol]
  if (!entry) {
    throw new MessagingError(
      'MESSAGING_INVALID_URL',
      `unknown broker ${JSON.stringify(parsed.protocol.replace(/:$/, ''))} in ${JSON.stringify(url)}: expected memory, kafka or nats`,
    )
  }
  const load = () => import(entry.specifier) as Promise<AdapterModule>
  const { clients } = entry
  // The adapter is what imports the client: a missing client shows as the adapter failing to load.
  const adapter =
    clients === undefined
      ? await load()
      : await loadPeer<AdapterModule>(
          clients,
          load,
          (cause) =>
            new MessagingError(
              'MESSAGING_CLIENT_MISSING',
              `${parsed.protocol}// brokers need the ${clients.join(' and ')} package${clients.length > 1 ? 's' : ''}: npm install ${clients.join(' ')}`,
              { cause },
            ),
        )
  const settings = (options[entry.settings] as Record<string, unknown> | undefined) ?? {}
  const transport = await adapter.createTransport(parsed, { logger: options.logger, settings })
  return createBrokerOver(transport, options)
}
