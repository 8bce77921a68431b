/**
 * When to apply updates. With a debounce of 0 (the default), the updates delivered by one callback
 * (all events of one etcd watch response, every put made in one synchronous run) are applied
 * together, right after it: no timer, so an isolated update costs no latency. Otherwise a burst is
 * applied `debounce` ms after its last update, and at the latest `maxDebounce` ms after its first.
 */
export class Debouncer {
  #scheduled = false
  #timer: NodeJS.Timeout | undefined
  #burstStart: number | undefined

  constructor(
    private readonly debounce: number,
    private readonly maxDebounce: number | undefined,
    private readonly flush: () => void,
  ) {}

  schedule(): void {
    const debounce = this.debounce
    if (debounce === 0) {
      if (this.#scheduled) return
      this.#scheduled = true
      queueMicrotask(() => this.flush())
      return
    }
    const now = Date.now()
    this.#burstStart ??= now
    const maxWait = this.maxDebounce ?? Math.max(1_000, debounce * 10)
    clearTimeout(this.#timer)
    this.#scheduled = true
    this.#timer = setTimeout(() => this.flush(), Math.max(0, Math.min(debounce, this.#burstStart + maxWait - now)))
  }

  /** Called as the flush starts: the next update opens a new burst. */
  reset(): void {
    clearTimeout(this.#timer)
    this.#scheduled = false
    this.#burstStart = undefined
  }
}
