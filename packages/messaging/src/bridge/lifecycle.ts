import type { LoggerLike } from '@backplane/messaging'
import { BridgeError } from './errors.js'

export type Phase = 'starting' | 'ready' | 'failed' | 'closing'

/**
 * Where the bridge stands between createBridge and close. Requests other than the health checks
 * wait for start-up, and get its failure (or SHUTTING_DOWN) instead of an answer.
 */
export class BridgeLifecycle {
  phase: Phase = 'starting'
  /** Why start-up failed: answered to every request that waits for it, and shown by /readyz. */
  failure: BridgeError | undefined
  private started: Promise<void> = Promise.resolve()

  /** Tracks start-up (which sets `phase` to ready at its end); the promise it returns is `bridge.ready`. */
  begin(startUp: Promise<void>, logger: LoggerLike): Promise<void> {
    const ready = startUp.catch((error: unknown) => {
      if (this.phase === 'starting') this.phase = 'failed'
      const failure = BridgeError.is(error)
        ? error
        : new BridgeError(503, 'NOT_READY', `the bridge could not start: ${(error as Error)?.message ?? error}`, {
            cause: error,
          })
      this.failure = failure
      logger.error({ err: failure.message }, 'bridge failed to start')
      throw failure
    })
    ready.catch(() => {}) // the caller may never await it; requests report the failure
    this.started = ready
    return ready
  }

  async whenReady(): Promise<void> {
    if (this.phase === 'ready') return
    if (this.phase === 'closing') throw new BridgeError(503, 'SHUTTING_DOWN', 'the bridge is shutting down')
    if (this.phase === 'failed') throw this.failure as BridgeError
    await this.started
  }
}
