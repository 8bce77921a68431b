import { EventEmitter } from 'eventemitter3'

// biome-ignore lint/suspicious/noExplicitAny: listener parameter types come from the event map
type Listener = (...args: any[]) => void
type Once = Listener & { listener?: Listener }

/**
 * Typed events (eventemitter3 underneath) where a listener that throws cannot hurt anyone: each
 * listener runs in its own try/catch, the exception goes to `onListenerError`, the remaining
 * listeners still run and the emitter (and the watcher behind it) keeps going. Plain emitters
 * would stop at the first exception, and etcd3 rethrows it asynchronously, crashing the process.
 */
export class GuardedEmitter<Events extends { [E in keyof Events]: Listener }> {
  readonly #ee = new EventEmitter()
  readonly #onListenerError: (error: unknown, event: string) => void

  constructor(onListenerError: (error: unknown, event: string) => void) {
    this.#onListenerError = onListenerError
  }

  /** Adds a listener; returns this. */
  on<E extends keyof Events & string>(event: E, listener: Events[E]): this {
    this.#ee.on(event, listener)
    return this
  }

  /** Adds a listener that runs for the next emission only. */
  once<E extends keyof Events & string>(event: E, listener: Events[E]): this {
    const wrapper: Once = (...args: unknown[]) => {
      this.#ee.off(event, wrapper)
      listener(...args)
    }
    wrapper.listener = listener
    this.#ee.on(event, wrapper)
    return this
  }

  /** Removes one registration of `listener` (added with on or once), or every listener of the event. */
  off<E extends keyof Events & string>(event: E, listener?: Events[E]): this {
    if (listener === undefined) {
      this.#ee.removeAllListeners(event)
      return this
    }
    for (const fn of this.#ee.listeners(event) as Once[]) {
      if (fn === listener || fn.listener === listener) {
        this.#ee.off(event, fn)
        break
      }
    }
    return this
  }

  listenerCount(event: keyof Events & string): number {
    return this.#ee.listenerCount(event)
  }

  /** Calls every listener of `event`, each isolated; returns whether there was any. */
  protected emitSafely<E extends keyof Events & string>(event: E, ...args: Parameters<Events[E]>): boolean {
    const listeners = this.#ee.listeners(event) as Listener[]
    for (const fn of listeners) {
      try {
        fn(...args)
      } catch (error) {
        this.#onListenerError(error, event)
      }
    }
    return listeners.length > 0
  }

  protected removeAllListeners(): void {
    this.#ee.removeAllListeners()
  }
}
