import { type Context, context, ProxyTracerProvider, propagation, trace } from '@opentelemetry/api'

/** Instrumentation scope of the bridge's spans (HTTP requests, webhook calls). */
export const BRIDGE_TRACER = '@backplane/messaging/bridge'

/**
 * Whether an SDK is registered to record spans (the bridge's own copy of the core's check, so it
 * needs only `@opentelemetry/api`). Without one, no span is made: it would record nothing.
 */
export function tracerRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(BRIDGE_TRACER) !== undefined
}

/** Runs the request in its trace: an instrumented server's span, else the incoming `traceparent`. */
export function requestTraceContext(headers: Record<string, string | string[] | undefined>): Context {
  const active = context.active()
  if (trace.getSpan(active)) return active
  return propagation.extract(active, headers)
}
