/**
 * The circuit breaker of one webhook subscription, as a pure state machine: `transition` takes a
 * snapshot, an event and the settings and returns the next snapshot, nothing else. Time comes in
 * with each event, so tests drive it with any clock; webhook-circuit.ts runs the effects (pause
 * and resume consumption, the probe timer, events, the store).
 *
 * closed ──failures──▶ open ──wait──▶ half-open ──probe ok──▶ closed
 *                        ▲                │
 *                        └──probe failed──┘──failing for disableAfter──▶ disabled ──enable──▶ closed
 */

export type BreakerState = 'closed' | 'open' | 'half-open' | 'disabled'

export interface BreakerSettings {
  /** Consecutive failed calls that open the breaker. */
  readonly failures: number
  /** The waits (ms) before each probe of an open breaker; the last one repeats. */
  readonly schedule: readonly number[]
  /** Failing this long (ms) since the breaker first opened, without a success, disables the subscription. */
  readonly disableAfter: number
}

export interface BreakerSnapshot {
  readonly state: BreakerState
  /** Failed calls since the last success, probes included. */
  readonly failures: number
  /** When it last opened (ms since the epoch). */
  readonly openedAt: number | undefined
  /** When this outage began: the first opening since the last success. */
  readonly failingSince: number | undefined
  /** When the open breaker lets the next probe through. */
  readonly nextProbeAt: number | undefined
  /** Probes made in this outage. */
  readonly probes: number
  /** The half-open breaker's probe call is in flight. */
  readonly probing: boolean
  readonly disabledAt: number | undefined
  /** Why it is disabled. */
  readonly reason: string | undefined
}

/**
 * `success`: the endpoint answered (2xx, or a 4xx that blames the message); `failure`: it did
 * not (timeout, refused connection, 5xx, 408, 429, redirect). `probe` says the call was the
 * half-open breaker's probe: other outcomes that arrive while it is not closed are stragglers
 * from before it opened, and change nothing.
 */
export type BreakerEvent =
  | { type: 'success'; at: number; probe?: boolean | undefined }
  | { type: 'failure'; at: number; probe?: boolean | undefined; retryAfter?: number | undefined }
  /** The probe timer fired. */
  | { type: 'wait-ended'; at: number }
  /** The half-open breaker let a call through. */
  | { type: 'probe-started'; at: number }
  /** Re-enabled by the API: a fresh breaker. */
  | { type: 'enable'; at: number }
  /** Disabled elsewhere (the store says so: at start, or another bridge did it). */
  | { type: 'disable'; at: number; reason: string }

/** What a delivery may do now: call, be the probe, wait for the probe's outcome, or go back to the broker. */
export type Admission = 'call' | 'probe' | 'hold' | 'refuse'

export const CLOSED: BreakerSnapshot = Object.freeze({
  state: 'closed',
  failures: 0,
  openedAt: undefined,
  failingSince: undefined,
  nextProbeAt: undefined,
  probes: 0,
  probing: false,
  disabledAt: undefined,
  reason: undefined,
})

export function admit(snapshot: BreakerSnapshot): Admission {
  switch (snapshot.state) {
    case 'closed':
      return 'call'
    case 'half-open':
      return snapshot.probing ? 'hold' : 'probe'
    default:
      return 'refuse'
  }
}

/** The wait before the probe after `probes` of them: the schedule's entry, the last one repeating. */
export function scheduledWait(settings: BreakerSettings, probes: number): number {
  const { schedule } = settings
  return schedule[Math.min(probes, schedule.length - 1)] as number
}

/** Opens (again) at `at`: the next probe after the scheduled wait, a longer Retry-After, never past the disable deadline. */
function open(
  snapshot: BreakerSnapshot,
  at: number,
  failingSince: number,
  settings: BreakerSettings,
  retryAfter: number | undefined,
): BreakerSnapshot {
  const wait = Math.max(scheduledWait(settings, snapshot.probes), retryAfter ?? 0)
  return {
    ...snapshot,
    state: 'open',
    failures: snapshot.failures + 1,
    openedAt: at,
    failingSince,
    nextProbeAt: Math.min(at + wait, failingSince + settings.disableAfter),
    probing: false,
  }
}

function disabled(snapshot: BreakerSnapshot, at: number, reason: string): BreakerSnapshot {
  return { ...snapshot, state: 'disabled', nextProbeAt: undefined, probing: false, disabledAt: at, reason }
}

/** The next snapshot; the same object when the event changes nothing. */
export function transition(snapshot: BreakerSnapshot, event: BreakerEvent, settings: BreakerSettings): BreakerSnapshot {
  if (event.type === 'enable') return CLOSED
  if (event.type === 'disable')
    return snapshot.state === 'disabled' ? snapshot : disabled(snapshot, event.at, event.reason)
  switch (snapshot.state) {
    case 'closed':
      if (event.type === 'success') return snapshot.failures === 0 ? snapshot : CLOSED
      if (event.type !== 'failure') return snapshot
      if (snapshot.failures + 1 < settings.failures) return { ...snapshot, failures: snapshot.failures + 1 }
      return open(snapshot, event.at, event.at, settings, event.retryAfter)
    case 'open':
      if (event.type !== 'wait-ended' || event.at < (snapshot.nextProbeAt as number)) return snapshot
      return { ...snapshot, state: 'half-open', nextProbeAt: undefined, probing: false }
    case 'half-open':
      if (event.type === 'probe-started') {
        return snapshot.probing ? snapshot : { ...snapshot, probing: true, probes: snapshot.probes + 1 }
      }
      if (!snapshot.probing || (event.type !== 'success' && event.type !== 'failure') || !event.probe) return snapshot
      if (event.type === 'success') return CLOSED
      return afterFailedProbe(snapshot, event.at, settings, event.retryAfter)
    default:
      return snapshot
  }
}

function afterFailedProbe(
  snapshot: BreakerSnapshot,
  at: number,
  settings: BreakerSettings,
  retryAfter: number | undefined,
): BreakerSnapshot {
  const since = snapshot.failingSince as number
  if (at - since < settings.disableAfter) return open(snapshot, at, since, settings, retryAfter)
  const failures = snapshot.failures + 1
  return disabled(
    { ...snapshot, failures },
    at,
    `no successful call since ${new Date(since).toISOString()} (${failures} failed calls, ${snapshot.probes} probes; disableAfter is ${settings.disableAfter} ms)`,
  )
}
