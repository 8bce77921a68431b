/**
 * Runs tasks with at most `concurrency` at once. With `ordered`, tasks of one key run one at a
 * time in arrival order (other keys go on around them); tasks without a key are never held back.
 */
export interface KeyedLimiter {
  /**
   * Runs `task(arg)` when there is room. The task and its argument are passed apart so that
   * callers running one per message need no closure for each.
   */
  run<T, A = undefined>(key: string | undefined, task: (arg: A) => Promise<T>, arg?: A): Promise<T>
  /** Tasks started and not yet finished. */
  readonly active: number
  /** Tasks waiting for a slot or for their key. */
  readonly waiting: number
}

/** A task waiting for a slot or its key; it is what settles the promise `run` returned. */
interface Pending {
  key: string | undefined
  task: (arg: unknown) => Promise<unknown>
  arg: unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
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
      start(next)
    }
  }

  function start(pending: Pending): void {
    let promise: Promise<unknown>
    try {
      promise = pending.task(pending.arg)
    } catch (error) {
      promise = Promise.reject(error)
    }
    promise.then(
      (value) => {
        finished(pending.key)
        pending.resolve(value)
      },
      (error: unknown) => {
        finished(pending.key)
        pending.reject(error)
      },
    )
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

  // What ends a task run at once whose key does not count: one function for all of them.
  const finishedUnkeyed = () => finished(undefined)

  return {
    run<T, A = undefined>(key: string | undefined, task: (arg: A) => Promise<T>, arg?: A): Promise<T> {
      const keyed = ordered && key !== undefined
      // A free slot, nobody waiting for one, and the key (if it counts) not busy: run now, on
      // the task's own promise, without queueing.
      if (active < concurrency && readyHead === ready.length && !(keyed && busyKeys.has(key))) {
        if (keyed) busyKeys.set(key, [])
        active++
        const promise = task(arg as A)
        const done = keyed ? () => finished(key) : finishedUnkeyed
        promise.then(done, done)
        return promise
      }
      return new Promise<T>((resolve, reject) => {
        const pending: Pending = {
          key,
          task: task as (arg: unknown) => Promise<unknown>,
          arg,
          resolve: resolve as (value: unknown) => void,
          reject,
        }
        waiting++
        if (keyed) {
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
