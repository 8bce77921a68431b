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
  /**
   * The same without a promise: calls `task(arg)` when there is room, maybe before returning;
   * the task must not throw, and must call `finish(key)` once it ended (maybe before it
   * returns). A waiting task costs one small object rather than a promise and its functions.
   */
  start<A>(key: string | undefined, task: (arg: A) => void, arg: A): void
  /** Ends a task begun by `start`; the next waiting task may start before this returns. */
  finish(key: string | undefined): void
  /** Tasks started and not yet finished. */
  readonly active: number
  /** Tasks waiting for a slot or for their key. */
  readonly waiting: number
}

/**
 * A task waiting for a slot or its key. `next` links it into one queue at a time: its key's
 * (a ring: the map holds the tail, whose `next` is the head) or the ready queue. `resolve` is
 * set for tasks of `run`, whose promise it settles.
 */
interface Pending {
  key: string | undefined
  task: (arg: unknown) => unknown
  arg: unknown
  next: Pending | undefined
  resolve: ((value: unknown) => void) | undefined
  reject: ((error: unknown) => void) | undefined
}

export function createKeyedLimiter(concurrency: number, ordered: boolean): KeyedLimiter {
  let readyHead: Pending | undefined
  let readyTail: Pending | undefined
  // A key present is busy; its value is the tail of the tasks waiting for it, or null for none.
  const busyKeys = new Map<string, Pending | null>()
  let active = 0
  let waiting = 0
  // Tasks that end at once would otherwise start the next from inside `finish`, one stack frame
  // deeper per task: the outer loop picks them up instead.
  let pumping = false

  function pushReady(pending: Pending): void {
    pending.next = undefined
    if (readyTail) readyTail.next = pending
    else readyHead = pending
    readyTail = pending
  }

  function pump(): void {
    if (pumping) return
    pumping = true
    try {
      while (active < concurrency && readyHead !== undefined) {
        const next = readyHead
        readyHead = next.next
        if (readyHead === undefined) readyTail = undefined
        next.next = undefined
        waiting--
        active++
        if (next.resolve) startPromised(next)
        else next.task(next.arg)
      }
    } finally {
      pumping = false
    }
  }

  function startPromised(pending: Pending): void {
    let promise: Promise<unknown>
    try {
      promise = pending.task(pending.arg) as Promise<unknown>
    } catch (error) {
      promise = Promise.reject(error)
    }
    promise.then(
      (value) => {
        finish(pending.key)
        pending.resolve?.(value)
      },
      (error: unknown) => {
        finish(pending.key)
        pending.reject?.(error)
      },
    )
  }

  function finish(key: string | undefined): void {
    active--
    if (ordered && key !== undefined) {
      const tail = busyKeys.get(key)
      if (tail) {
        const head = tail.next as Pending
        if (head === tail) busyKeys.set(key, null)
        else tail.next = head.next
        pushReady(head)
      } else busyKeys.delete(key)
    }
    pump()
  }

  /** Whether a task can start now; marks its key busy when it can. */
  function admit(key: string | undefined, keyed: boolean): boolean {
    if (active >= concurrency || readyHead !== undefined || (keyed && busyKeys.has(key as string))) return false
    if (keyed) busyKeys.set(key as string, null)
    active++
    return true
  }

  function enqueue(pending: Pending, keyed: boolean): void {
    waiting++
    if (keyed) {
      const key = pending.key as string
      if (busyKeys.has(key)) {
        const tail = busyKeys.get(key)
        if (tail) {
          pending.next = tail.next
          tail.next = pending
        } else pending.next = pending
        busyKeys.set(key, pending)
        return
      }
      busyKeys.set(key, null)
    }
    pushReady(pending)
    pump()
  }

  // What ends a task run at once whose key does not count: one function for all of them.
  const finishUnkeyed = () => finish(undefined)

  return {
    run<T, A = undefined>(key: string | undefined, task: (arg: A) => Promise<T>, arg?: A): Promise<T> {
      const keyed = ordered && key !== undefined
      // A free slot, nobody waiting for one, and the key (if it counts) not busy: run now, on
      // the task's own promise, without queueing.
      if (admit(key, keyed)) {
        const promise = task(arg as A)
        const done = keyed ? () => finish(key) : finishUnkeyed
        promise.then(done, done)
        return promise
      }
      return new Promise<T>((resolve, reject) => {
        const pending: Pending = {
          key,
          task: task as (arg: unknown) => unknown,
          arg,
          next: undefined,
          resolve: resolve as (value: unknown) => void,
          reject,
        }
        enqueue(pending, keyed)
      })
    },
    start<A>(key: string | undefined, task: (arg: A) => void, arg: A): void {
      const keyed = ordered && key !== undefined
      if (admit(key, keyed)) {
        task(arg)
        return
      }
      const pending: Pending = {
        key,
        task: task as (arg: unknown) => unknown,
        arg,
        next: undefined,
        resolve: undefined,
        reject: undefined,
      }
      enqueue(pending, keyed)
    },
    finish,
    get active() {
      return active
    },
    get waiting() {
      return waiting
    },
  }
}
