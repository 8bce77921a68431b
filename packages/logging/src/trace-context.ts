import { context, createContextKey, propagation, ROOT_CONTEXT } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core'

export interface InstalledTraceContext {
  /** True when this call registered the AsyncLocalStorage context manager. */
  contextManager: boolean
  /** True when this call registered the W3C trace-context and baggage propagator. */
  propagator: boolean
}

const probeKey = createContextKey('@backplane/logging/probe')

/** True when some context manager is registered (the API's no-op one never keeps a value). */
function hasContextManager(): boolean {
  return context.with(ROOT_CONTEXT.setValue(probeKey, true), () => context.active().getValue(probeKey) === true)
}

/**
 * Makes trace correlation work without an OpenTelemetry SDK: registers the official
 * AsyncLocalStorage context manager and W3C propagators, each only if the app has not registered
 * one already (an SDK started before or after keeps working). Safe to call more than once.
 */
export function installTraceContext(): InstalledTraceContext {
  const installed = { contextManager: false, propagator: false }
  if (!hasContextManager()) {
    installed.contextManager = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  }
  if (propagation.fields().length === 0) {
    installed.propagator = propagation.setGlobalPropagator(
      new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    )
  }
  return installed
}
