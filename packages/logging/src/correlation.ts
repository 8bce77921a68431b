import { context, isSpanContextValid, type SpanContext, trace } from '@opentelemetry/api'

// The active span rarely changes between two lines, so its JSON fragment is built once and kept
// until another span context shows up: this is what keeps correlation cheap per line.
let lastSpanContext: SpanContext | undefined
let lastFragment = ''

/** `"trace_id":"…","span_id":"…","trace_flags":"01",` for the active span, or '' outside one. */
export function activeTraceFragment(): string {
  const span = trace.getSpan(context.active())
  if (span === undefined) return ''
  const spanContext = span.spanContext()
  if (spanContext === lastSpanContext) return lastFragment
  if (!isSpanContextValid(spanContext)) return ''
  lastSpanContext = spanContext
  // Ids are validated hex by isSpanContextValid, so they need no JSON escaping.
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0')
  lastFragment = `"trace_id":"${spanContext.traceId}","span_id":"${spanContext.spanId}","trace_flags":"${flags}",`
  return lastFragment
}

/**
 * pino `hooks.streamWrite`: puts the active span's ids at the front of the serialized line. Done
 * on the string rather than through `mixin`, which would allocate and merge an object per line.
 */
export function addTraceFields(line: string): string {
  const fragment = activeTraceFragment()
  return fragment === '' || line.charCodeAt(0) !== 123 /* { */ ? line : `{${fragment}${line.slice(1)}`
}
