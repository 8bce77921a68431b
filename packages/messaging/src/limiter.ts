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
      const next = ready[readyHead] as Pending
      // Started entries are let go at once: under steady load the queue never empties, and
      // entries kept behind the head would hold every delivery (and its message) ever queued.
      ready[readyHead++] = undefined as unknown as Pending
      if (readyHead === ready.length) {
        ready.length = 0
        readyHead = 0
      } else if (readyHead >= 1024 && readyHead * 2 >= ready.length) {
        ready.splice(0, readyHead)
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
      // A free slot, nobody waiting for one, and the key (if it counts) not busy: run now, on
      // the task's own promise, without queueing.
      if (active < concurrency && readyHead === ready.length && (!ordered || key === undefined || !busyKeys.has(key))) {
        if (ordered && key !== undefined) busyKeys.set(key, [])
        active++
        const promise = task()
        const done = () => finished(key)
        promise.then(done, done)
        return promise
      }
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
