import { ConfigError } from './errors.js'

/**
 * Resolves or rejects like `promise`, or rejects with a CONFIG_TIMEOUT ConfigError after `ms`.
 * The late outcome of `promise` is swallowed: etcd calls made while etcd is down may never settle.
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guarded = Promise.resolve(promise)
  guarded.catch(() => {})
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfigError('CONFIG_TIMEOUT', `${what} did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([guarded, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Exponential backoff with full jitter between `min` and `max` ms: retries of many clients spread out. */
export class Backoff {
  #attempt = 0
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {}

  next(): number {
    const ceiling = Math.min(this.max, this.min * 2 ** this.#attempt)
    this.#attempt = Math.min(this.#attempt + 1, 30)
    return Math.round(this.min + Math.random() * (ceiling - this.min))
  }

  reset(): void {
    this.#attempt = 0
  }
}
