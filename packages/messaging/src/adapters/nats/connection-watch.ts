import type { ConnectionState, LoggerLike, TransportEvents } from '@backplane/messaging'
import type { NatsConnection, Status } from '@nats-io/transport-node'
import { EventEmitter } from 'eventemitter3'
import { closedError, errorText } from './errors.js'
import { withTimeout } from './timeouts.js'

export interface ConnectionWatch {
  events: EventEmitter<TransportEvents>
  state(): ConnectionState
  /** Our own close: the end of the connection is then no news. */
  closing(): void
  /** Resolves once connected; MESSAGING_TIMEOUT when still not at `deadline`. */
  whenConnected(deadline: number, what: string): Promise<void>
  /** Resolves at the next disconnect or reconnect; cancel() when no longer interested. */
  nextChange(): { promise: Promise<void>; cancel(): void }
}

/** Maps nats.js's status stream to the transport's events and state. */
export function watchConnection(nc: NatsConnection, logger: LoggerLike): ConnectionWatch {
  const events = new EventEmitter<TransportEvents>()
  let state: ConnectionState = 'connected'
  let closing = false
  // Waiters in a Set (cheap to leave) rather than listeners on one shared promise, which would
  // pile up with every publish until the next disconnect.
  const changeWaiters = new Set<() => void>()
  const connectWaiters = new Set<() => void>()
  const wakeAll = (waiters: Set<() => void>) => {
    for (const resolve of waiters) resolve()
    waiters.clear()
  }

  function waiter(waiters: Set<() => void>) {
    let resolver: () => void = () => {}
    const promise = new Promise<void>((resolve) => {
      resolver = resolve
      waiters.add(resolve)
    })
    return { promise, cancel: () => void waiters.delete(resolver) }
  }

  async function whenConnected(deadline: number, what: string): Promise<void> {
    while (state !== 'connected') {
      if (state === 'closed') throw closedError()
      const back = waiter(connectWaiters)
      try {
        await withTimeout(back.promise, Math.max(0, deadline - Date.now()), `${what}: NATS is not reachable`)
      } finally {
        back.cancel()
      }
    }
  }

  function onStatus(status: Status): void {
    switch (status.type) {
      case 'disconnect':
        state = 'disconnected'
        wakeAll(changeWaiters)
        events.emit('disconnected', new Error(`lost the connection to NATS server ${status.server}; reconnecting`))
        break
      case 'reconnect':
        state = 'connected'
        wakeAll(changeWaiters)
        wakeAll(connectWaiters)
        logger.info({ server: status.server }, 'nats reconnected')
        events.emit('connected')
        break
      case 'error':
        events.emit('error', status.error)
        break
      case 'ldm':
        // Lame duck mode: the server is going away; nats.js moves to another one by itself.
        logger.warn({ server: status.server }, 'nats server entering lame duck mode')
        break
      case 'reconnecting':
        logger.debug({}, 'nats reconnecting')
        break
      default:
        logger.debug({ type: status.type }, 'nats status')
    }
  }

  void (async () => {
    for await (const status of nc.status()) onStatus(status)
  })().catch((error: unknown) => logger.warn({ err: errorText(error) }, 'nats status stream ended'))
  void nc.closed().then((error) => {
    state = 'closed'
    wakeAll(changeWaiters)
    wakeAll(connectWaiters)
    if (closing) return
    // Only when reconnecting was given up (maxReconnectAttempts) or the server refused us for good.
    const reason = error ?? new Error('the NATS connection closed')
    logger.error({ err: reason.message }, 'nats connection closed for good')
    events.emit('disconnected', reason)
    events.emit('error', reason)
  })

  return {
    events,
    state: () => state,
    closing: () => {
      closing = true
    },
    whenConnected,
    nextChange: () => waiter(changeWaiters),
  }
}
