import { performance } from 'node:perf_hooks'
import type { TransportDelivery } from './transport.js'

/** A delivery whose handler is running; unlinked in O(1) when the handler ends. */
export interface RunningEntry {
  readonly delivery: TransportDelivery
  readonly since: number
  prev: RunningEntry | undefined
  next: RunningEntry | undefined
}

/**
 * The deliveries of one subscription whose handlers are running, and one ticker (not a timer per
 * message) that calls `onLong` for each that has been running for `intervalMs` or more (Kafka
 * rebalance, JetStream redelivery). The ticker stops at a tick that finds nothing running, not
 * when the last handler ends: quick handlers would otherwise start and stop a timer for nearly
 * every message. A linked list rather than a Map keyed by delivery: adding and removing an entry
 * per message costs no hashing and leaves no holes to rehash.
 */
export class RunningDeliveries {
  private head: RunningEntry | undefined
  private ticker: NodeJS.Timeout | undefined

  constructor(
    private readonly intervalMs: number,
    private readonly onLong: (delivery: TransportDelivery) => void,
  ) {}

  add(delivery: TransportDelivery, since: number): RunningEntry {
    const entry: RunningEntry = { delivery, since, prev: undefined, next: this.head }
    if (this.head) this.head.prev = entry
    this.head = entry
    if (!this.ticker) {
      this.ticker = setInterval(() => this.tick(), this.intervalMs)
      this.ticker.unref()
    }
    return entry
  }

  remove(entry: RunningEntry): void {
    if (entry.prev) entry.prev.next = entry.next
    else if (this.head === entry) this.head = entry.next
    else return // already removed
    if (entry.next) entry.next.prev = entry.prev
    entry.prev = undefined
    entry.next = undefined
  }

  private tick(): void {
    if (!this.head) {
      clearInterval(this.ticker)
      this.ticker = undefined
      return
    }
    const now = performance.now()
    for (let entry: RunningEntry | undefined = this.head; entry; entry = entry.next) {
      if (now - entry.since >= this.intervalMs) this.onLong(entry.delivery)
    }
  }
}
