/**
 * Leases and polling: this engine claims the instances whose work is due and that no live process
 * holds (at start: every one it may resume), keeps its lease alive with heartbeats, and polls for
 * work others left (expired leases, other processes' commits, the outbox).
 */
import type { InstanceRecord } from '../store.js'
import type { EngineContext } from './context.js'
import type { FlowGate } from './flow.js'
import type { Instances } from './instances.js'
import { workflowMetrics } from './metrics.js'
import type { Outbox } from './outbox.js'
import type { Scheduler } from './scheduler.js'

const CLAIM_PAGE = 1000

export interface Leases {
  /** At start: takes the lease, claims every instance this engine may resume; resolves with how many. */
  resume(): Promise<number>
  /** Starts the poll and heartbeat loops. */
  start(): void
  /** Stops them (close). */
  stop(): void
}

export function createLeases(
  ctx: EngineContext,
  instances: Instances,
  scheduler: Scheduler,
  outbox: Outbox,
  gate: FlowGate,
): Leases {
  const { store, clock, logger, events, owner, owned, opts } = ctx
  const { lanes, remember } = instances
  let pollTimer: ReturnType<typeof setTimeout> | undefined
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined
  let lastHeartbeat = 0
  let lostLease = false

  const claimAll = async (initial: boolean): Promise<number> => {
    let total = 0
    const includeOwn = initial || lostLease
    const takeover = initial && !store.shared
    // Claims that can return rows this engine already holds page through them by id.
    let afterId: string | undefined = includeOwn || takeover ? '' : undefined
    for (;;) {
      const now = clock.now()
      const claimed = await store.claim({
        owner,
        now,
        dueBefore: initial ? Number.MAX_SAFE_INTEGER : now + opts.pollInterval,
        limit: CLAIM_PAGE,
        includeOwn,
        takeover,
        afterId,
      })
      for (const claimedRecord of claimed) {
        const { owner: _owner, ...record } = claimedRecord as InstanceRecord & { owner?: string | null }
        owned.add(record.id)
        if (!lanes.has(record.id)) remember(record)
        scheduler.scheduleWork(record)
      }
      if (afterId !== undefined && claimed.length > 0) afterId = (claimed[claimed.length - 1] as InstanceRecord).id
      total += claimed.length
      if (claimed.length > 0 && events.listenerCount('claimed') > 0)
        events.emit('claimed', { instances: claimed.map((r) => r.id), atStart: initial })
      if (claimed.length < CLAIM_PAGE) break
    }
    lostLease = false
    return total
  }

  const heartbeat = async () => {
    try {
      await store.heartbeat(owner, clock.now() + opts.leaseTimeout)
      lastHeartbeat = clock.now()
    } catch (error) {
      ctx.reportError(error, 'workflow: lease heartbeat failed')
      if (clock.now() - lastHeartbeat > opts.leaseTimeout && !lostLease) {
        // Others may take our instances over now: stop driving them, claim them again once back.
        logger.warn({ owner }, 'workflow lease lost: dropping local timers until the store answers again')
        lostLease = true
        scheduler.clear()
        owned.clear()
      }
    }
  }

  const pollLoop = () => {
    pollTimer = setTimeout(async () => {
      if (ctx.closing) return
      // Makes the instruments again if a meter provider was registered since: an idle engine's gauge shows too.
      workflowMetrics()
      try {
        await claimAll(false)
        await outbox.poll()
        await gate.refresh()
      } catch (error) {
        ctx.reportError(error, 'workflow: poll failed')
      }
      if (!ctx.closing) pollLoop()
    }, opts.pollInterval)
    pollTimer.unref()
  }

  const heartbeatLoop = () => {
    heartbeatTimer = setTimeout(
      async () => {
        if (ctx.closing) return
        await heartbeat()
        if (!ctx.closing) heartbeatLoop()
      },
      Math.max(50, Math.floor(opts.leaseTimeout / 3)),
    )
    heartbeatTimer.unref()
  }

  return {
    async resume() {
      await store.heartbeat(owner, clock.now() + opts.leaseTimeout)
      lastHeartbeat = clock.now()
      // Paused and parked activity types are known before any attempt is queued.
      await gate.refresh()
      return claimAll(true)
    },
    start() {
      pollLoop()
      heartbeatLoop()
    },
    stop() {
      if (pollTimer) clearTimeout(pollTimer)
      if (heartbeatTimer) clearTimeout(heartbeatTimer)
    },
  }
}
