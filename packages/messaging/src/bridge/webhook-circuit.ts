import { deferred } from '@backplane/internal'
import { admit, type BreakerEvent, type BreakerSettings, type BreakerSnapshot, CLOSED, transition } from './breaker.js'

/** What the breaker does to the subscription it guards. */
export interface CircuitEffects {
  /** Stops taking messages: the broker subscription is closed, what it held is released. */
  pause(): Promise<void>
  /** Takes messages again. */
  resume(): Promise<void>
  /** The state changed (events, metrics, logs, the store). */
  changed(from: BreakerSnapshot, to: BreakerSnapshot): void
  /** An effect failed: said, not thrown (nothing waits for it). */
  failed(what: string, error: unknown): void
}

// setTimeout takes at most 2^31-1 ms; a longer wait is armed again when it fires.
const MAX_TIMER_MS = 2_147_483_647

/**
 * The breaker of one subscription at run time: the snapshot of breaker.ts, its probe timer, the
 * deliveries held while a probe is in flight, and pause/resume run one at a time in order.
 */
export class WebhookCircuit {
  private current: BreakerSnapshot
  private timer: NodeJS.Timeout | undefined
  private probeDone: { promise: Promise<void>; resolve: () => void } | undefined
  private effects: Promise<void> = Promise.resolve()
  private stopped = false

  constructor(
    readonly settings: BreakerSettings,
    private readonly hooks: CircuitEffects,
    private readonly now: () => number = Date.now,
  ) {
    this.current = CLOSED
  }

  get snapshot(): BreakerSnapshot {
    return this.current
  }

  /** Whether to take messages: closed or half-open, and not stopped. */
  get consuming(): boolean {
    return !this.stopped && (this.current.state === 'closed' || this.current.state === 'half-open')
  }

  /**
   * What a delivery may do: `call` (closed), `probe` (it is the half-open breaker's one call), or
   * `refuse` (open, disabled, stopped: the message goes back to the broker). While the probe is
   * in flight the others wait here for its outcome.
   */
  async admit(): Promise<'call' | 'probe' | 'refuse'> {
    for (;;) {
      if (this.stopped) return 'refuse'
      const admission = admit(this.current)
      if (admission === 'hold') {
        this.probeDone ??= deferred()
        await this.probeDone.promise
        continue
      }
      if (admission === 'probe') this.apply({ type: 'probe-started', at: this.now() })
      return admission
    }
  }

  /** A call's outcome: `ok` when the endpoint answered (see BreakerEvent). */
  report(ok: boolean, probe: boolean, retryAfter?: number): void {
    const at = this.now()
    this.apply(ok ? { type: 'success', at, probe } : { type: 'failure', at, probe, retryAfter })
  }

  enable(): void {
    this.apply({ type: 'enable', at: this.now() })
  }

  disable(reason: string, at = this.now()): void {
    this.apply({ type: 'disable', at, reason })
  }

  /** Resolves once the pauses and resumes asked for so far have run. */
  idle(): Promise<void> {
    return this.effects
  }

  /** The subscription is going away: no more timers, held deliveries go back to the broker. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.wakeHeld()
  }

  private apply(event: BreakerEvent): void {
    if (this.stopped) return
    const before = this.current
    const after = transition(before, event, this.settings)
    if (after === before) return
    this.current = after
    if (after.state !== 'half-open' || !after.probing) this.wakeHeld()
    if (after.state === before.state) return
    clearTimeout(this.timer)
    this.timer = undefined
    if (after.state === 'open') this.arm(after.nextProbeAt as number)
    if (after.state === 'open' || after.state === 'disabled') this.run('pause', () => this.hooks.pause())
    else if (before.state !== 'half-open') this.run('resume', () => this.hooks.resume())
    this.hooks.changed(before, after)
  }

  /** Effects in the order asked: a resume never overtakes the pause before it. */
  private run(what: string, effect: () => Promise<void>): void {
    this.effects = this.effects.then(effect).catch((error: unknown) => this.hooks.failed(what, error))
  }

  private arm(at: number): void {
    const delay = Math.min(Math.max(0, at - this.now()), MAX_TIMER_MS)
    this.timer = setTimeout(() => {
      this.timer = undefined
      const now = this.now()
      if (now < at) this.arm(at)
      else this.apply({ type: 'wait-ended', at: now })
    }, delay)
    this.timer.unref()
  }

  private wakeHeld(): void {
    const held = this.probeDone
    this.probeDone = undefined
    held?.resolve()
  }
}
