import net from 'node:net'
import tls from 'node:tls'
import type { ConnectionState, TransportEvents } from '@backplane/messaging'
import type { EventEmitter } from 'eventemitter3'
import type { ISocketFactory } from 'kafkajs'

export interface ConnectionTracker {
  state(): ConnectionState
  /** A broker answered. */
  up(): void
  /** A connection failed or a request went unanswered. */
  down(error: Error): void
  close(): void
}

// kafkajs reconnects by itself but reports little: no event when a socket drops, CONNECT only
// once. So any answered request means connected, and a socket error, a request timeout or a
// crashed consumer means disconnected. A broker closing an idle connection is not an error.
export function trackConnection(events: EventEmitter<TransportEvents>): ConnectionTracker {
  let state: ConnectionState = 'connecting'
  return {
    state: () => state,
    up() {
      if (state !== 'connecting' && state !== 'disconnected') return
      state = 'connected'
      events.emit('connected')
    },
    down(error) {
      if (state !== 'connected') return
      state = 'disconnected'
      events.emit('disconnected', error)
    },
    close() {
      state = 'closed'
    },
  }
}

const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
])

export function isConnectionError(error: unknown): boolean {
  for (let e = error as Error | undefined, depth = 0; e && depth < 8; e = e.cause as Error | undefined, depth++) {
    if (CONNECTION_ERRORS.has(e.name)) return true
  }
  return false
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

const KEEP_ALIVE_MS = 60_000

// As kafkajs's own (not exported), so that the adapter sees every socket's errors.
export const defaultSocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : net.connect({ host, port }, onConnect)
  socket.setKeepAlive(true, KEEP_ALIVE_MS)
  return socket
}

export function observedSocketFactory(inner: ISocketFactory, onError: (error: Error) => void): ISocketFactory {
  return (args) => {
    const socket = inner(args)
    // kafkajs listens too and handles the error; this only reports it.
    socket.on('error', (error: Error) => {
      onError(new Error(`connection to ${args.host}:${args.port} failed: ${error.message}`, { cause: error }))
    })
    return socket
  }
}
