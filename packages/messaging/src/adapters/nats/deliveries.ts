import type { DeliveryHandler, LoggerLike, TransportDelivery } from '@backplane/messaging'
import { errorText } from './errors.js'

/** Counts deliveries the core has not settled yet and lets close wait for them. */
export function inFlightCounter() {
  let count = 0
  let waiters: (() => void)[] = []
  const notify = () => {
    const current = waiters
    waiters = []
    for (const resolve of current) resolve()
  }
  return {
    get count() {
      return count
    },
    add() {
      count++
    },
    done() {
      count--
      notify()
    },
    /** Resolves at the next change (or at once when `ready()` holds). */
    async until(ready: () => boolean): Promise<void> {
      while (!ready()) await new Promise<void>((resolve) => waiters.push(resolve))
    },
    wake: notify,
  }
}

export function runDelivery(
  deliver: DeliveryHandler,
  delivery: TransportDelivery,
  logger: LoggerLike,
  done: () => void,
): void {
  const failed = (error: unknown) => {
    // The core settles every delivery; a rejection is a bug upstream: keep the message.
    logger.error({ topic: delivery.topic, err: errorText(error) }, 'delivery failed; releasing the message')
    delivery.release().then(done, done)
  }
  // Later, not inside nats.js's callback or iterator; one microtask rather than a promise chain.
  queueMicrotask(() => {
    let settled: Promise<void>
    try {
      settled = deliver(delivery)
    } catch (error) {
      failed(error)
      return
    }
    settled.then(done, failed)
  })
}
