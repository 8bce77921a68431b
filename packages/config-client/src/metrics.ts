/**
 * The package's metrics, through the OpenTelemetry API (no-ops until the app registers a meter
 * provider). Every instrument is named here once; the README's `## Metrics` table lists them.
 */
import { lazyInstruments } from '@backplane/internal'
import type { ObservableResult } from '@opentelemetry/api'
import type { Slot } from './slots.js'

const instruments = lazyInstruments('@backplane/config-client', (meter) => {
  meter
    .createObservableGauge('backplane.config.staleness', {
      unit: 's',
      description: 'Seconds since the configuration of a source was last known to equal its backend.',
    })
    .addCallback(observeStaleness)
  return {
    updates: meter.createCounter('backplane.config.updates', {
      unit: '{update}',
      description: 'Updates from a source, by outcome: applied, or rejected as invalid (the last good config stays).',
    }),
    sourceErrors: meter.createCounter('backplane.config.source.errors', {
      unit: '{error}',
      description: 'Problems a running source reported: a file that does not parse, a value that does not open.',
    }),
    watchRestarts: meter.createCounter('backplane.config.watch.restarts', {
      unit: '{restart}',
      description: 'etcd watches of the configuration replaced, by reason.',
    }),
  }
})

/** What a source is, as the `config.source` attribute: a few values per app, never a path or a name. */
export function kindOf(slot: Slot): string {
  return slot.source.kind ?? 'custom'
}

/** Counts one update per source whose change it carried (`names`: slot names). */
export function recordUpdates(slots: readonly Slot[], names: readonly string[], outcome: 'applied' | 'rejected'): void {
  const m = instruments()
  if (m.noop) return
  for (const slot of slots) if (names.includes(slot.name)) m.updates.add(1, { outcome, 'config.source': kindOf(slot) })
}

/** Counts a problem a source reported, and hands the error on. */
export function recordSourceError<E extends { code: string }>(slot: Slot, error: E): E {
  const m = instruments()
  if (!m.noop) m.sourceErrors.add(1, { 'config.source': kindOf(slot), 'error.type': error.code })
  return error
}

/** Why an etcd watch was replaced: the check got no answer, the stream went quiet, it broke, etcd cancelled it. */
export type WatchRestartReason = 'unreachable' | 'silent' | 'disconnected' | 'canceled'

export function recordWatchRestart(reason: WatchRestartReason): void {
  const m = instruments()
  if (!m.noop) m.watchRestarts.add(1, { reason })
}

// The slots of every open Config: what the staleness gauge reports. A closed Config leaves.
const tracked = new Set<readonly Slot[]>()

/** Reports the slots' staleness until `untrackSlots`; also makes the gauge on a provider registered since. */
export function trackSlots(slots: readonly Slot[]): void {
  tracked.add(slots)
  instruments()
}

export function untrackSlots(slots: readonly Slot[]): void {
  tracked.delete(slots)
}

/**
 * When (Date.now()) the values a slot serves were last known current: the source's own answer
 * while it is live; otherwise, or for a source that cannot tell, now while it is in touch and
 * the moment it went out of touch (or the snapshot's time, when it was down at start) after.
 */
export function currentAsOf(slot: Slot, now: number): number | undefined {
  const own = slot.live ? slot.source.currentAsOf?.() : undefined
  if (own !== undefined) return own
  return slot.available ? now : slot.staleSince
}

// Runs at every collection: a few comparisons per source. Nothing may escape it (other libraries'
// metrics are in the same collection), and a custom source's currentAsOf that throws is skipped.
function observeStaleness(result: ObservableResult): void {
  const now = Date.now()
  const worst = new Map<string, number>()
  for (const slots of tracked)
    for (const slot of slots) {
      try {
        const asOf = currentAsOf(slot, now)
        const seconds = asOf === undefined || !Number.isFinite(asOf) ? 0 : Math.max(0, now - asOf) / 1000
        const kind = kindOf(slot)
        // One series per kind: the stalest source of that kind, across every open Config.
        if (seconds >= (worst.get(kind) ?? 0)) worst.set(kind, seconds)
      } catch {}
    }
  for (const [kind, seconds] of worst) result.observe(seconds, { 'config.source': kind })
}
