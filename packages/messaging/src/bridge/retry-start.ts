/** What a route or a webhook subscription keeps while it runs: its pending retry and last error. */
export interface Restartable {
  retry: NodeJS.Timeout | undefined
  stats: { lastError?: string | undefined }
}

const MAX_DELAY_MS = 60_000

/**
 * Tries `start` again after `delay`, doubling the delay (up to a minute) after each failure, for
 * as long as `wanted()` says the run is still the current one (not closed, not replaced).
 */
export function retryStart(run: Restartable, wanted: () => boolean, start: () => Promise<void>, delay: number): void {
  run.retry = setTimeout(() => {
    run.retry = undefined
    if (!wanted()) return
    start().catch((error: unknown) => {
      run.stats.lastError = (error as Error)?.message ?? String(error)
      retryStart(run, wanted, start, Math.min(delay * 2, MAX_DELAY_MS))
    })
  }, delay)
  run.retry.unref()
}
