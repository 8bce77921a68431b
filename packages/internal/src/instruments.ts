import { createNoopMeter, type Meter, metrics } from '@opentelemetry/api'

/** A package's metric instruments, and whether they are the API's no-op ones. */
export type Instruments<T> = T & {
  /** No meter provider is registered: callers may skip the work of measuring (clock reads, attributes). */
  readonly noop: boolean
}

/**
 * Instruments made from the global meter provider on first use, and made again when the app
 * registers a provider after that (an SDK is often started after the libraries are imported).
 * `make` names every instrument once, so the package's metric catalogue has one place to check.
 */
export function lazyInstruments<T extends object>(scope: string, make: (meter: Meter) => T): () => Instruments<T> {
  let provider: unknown
  let current: Instruments<T> | undefined
  return () => {
    const now = metrics.getMeterProvider()
    if (current !== undefined && now === provider) return current
    provider = now
    const meter = now.getMeter(scope)
    // Without a registered provider the API hands out its no-op meter, a singleton.
    current = Object.assign(make(meter), { noop: meter === createNoopMeter() })
    return current
  }
}
