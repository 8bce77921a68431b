/**
 * Resolves after `ms`, or at once when `signal` aborts. The timer does not keep the process alive
 * unless `keepAlive` is set (a wait that must finish before exit, such as a close that releases leases).
 */
export function sleep(ms: number, signal?: AbortSignal, keepAlive = false): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    if (!keepAlive) timer.unref?.()
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * Settles like `promise`, or rejects with `onTimeout()` after `ms`. The late outcome of `promise`
 * is swallowed: a call to a server that is down may never settle, and must not crash the process.
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guarded = Promise.resolve(promise)
  guarded.catch(() => {})
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([guarded, timeout]).finally(() => clearTimeout(timer))
}
