/**
 * Runs tasks with at most `concurrency` at once. With `ordered`, tasks of one key run one at a
 * time in arrival order (other keys go on around them); tasks without a key are never held back.
 */
export interface KeyedLimiter {
  run<T>(key: string | undefined, task: () => Promise<T>): Promise<T>
  /** Tasks started and not yet finished. */
  readonly active: number
  /** Tasks waiting for a slot or for their key. */
  readonly waiting: number
}

interface Pending {
  key: string | undefined
  start: () => void
}

export function createKeyedLimiter(concurrency: number, ordered: boolean): KeyedLimiter {
  const ready: Pending[] = []
  let readyHead = 0
  const busyKeys = new Map<string, Pending[]>()
  let active = 0
  let waiting = 0

  function pump(): void {
    while (active < concurrency && readyHead < ready.length) {
      const next = ready[readyHead++] as Pending
      if (readyHead === ready.length) {
        ready.length = 0
        readyHead = 0
      }
      waiting--
      active++
      next.start()
    }
  }

  function finished(key: string | undefined): void {
    active--
    if (ordered && key !== undefined) {
      const queue = busyKeys.get(key) as Pending[]
      const next = queue.shift()
      if (next) ready.push(next)
      else busyKeys.delete(key)
    }
    pump()
  }

  return {
    run<T>(key: string | undefined, task: () => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const pending: Pending = {
          key,
          start: () => {
            task().then(
              (value) => {
                finished(key)
                resolve(value)
              },
              (error: unknown) => {
                finished(key)
                reject(error)
              },
            )
          },
        }
        waiting++
        if (ordered && key !== undefined) {
          const queue = busyKeys.get(key)
          if (queue) {
            queue.push(pending)
            return
          }
          busyKeys.set(key, [])
        }
        ready.push(pending)
        pump()
      })
    },
    get active() {
      return active
    },
    get waiting() {
      return waiting
    },
  }
}
