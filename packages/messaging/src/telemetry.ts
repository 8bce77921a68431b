import { performance } from 'node:perf_hooks'
import {
  type Context,
  context,
  createNoopMeter,
  type Histogram,
  metrics,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api'

const SCOPE = '@backplane/messaging'

/**
 * Whether an SDK is registered to record spans. Without one, a consumer span is only worth
 * making when the message carries a trace to continue; skipping it saves several allocations
 * per message on the fast path.
 */
export function tracerRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(SCOPE) !== undefined
}

const headerGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  // Header names are lowercased when they enter the core, so a lowercase lookup is case-insensitive.
  get: (carrier, key) => carrier[key.toLowerCase()],
}

/** Writes the active trace context (W3C `traceparent`/`tracestate` with the usual propagator) into `headers`. */
const headerSetter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key.toLowerCase()] = value
  },
}

export function injectContext(ctx: Context, headers: Record<string, string>): void {
  propagation.inject(ctx, headers, headerSetter)
}

export function extractContext(headers: Record<string, string>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter)
}

export interface MessagingAttributes {
  system: string
  destination: string
  group?: string | undefined
  messageId?: string | undefined
}

function attributesOf(operation: 'send' | 'process', a: MessagingAttributes): Record<string, string> {
  const attributes: Record<string, string> = {
    'messaging.system': a.system,
    'messaging.destination.name': a.destination,
    'messaging.operation.type': operation,
    'messaging.operation.name': operation,
  }
  if (a.group !== undefined) attributes['messaging.consumer.group.name'] = a.group
  if (a.messageId !== undefined) attributes['messaging.message.id'] = a.messageId
  return attributes
}

/**
 * The PRODUCER span of a publish, and the context to inject into its messages. Without a
 * registered tracer there is no span (the API's would record nothing), and the context is the
 * active one: what the no-op span would carry is its parent's span context, which propagators
 * read the same from the parent itself.
 */
export function startSendSpan(a: MessagingAttributes): { span: Span | undefined; context: Context } {
  const parent = context.active()
  if (!tracerRegistered()) return { span: undefined, context: parent }
  const span = trace
    .getTracer(SCOPE)
    .startSpan(`send ${a.destination}`, { kind: SpanKind.PRODUCER, attributes: attributesOf('send', a) }, parent)
  return { span, context: trace.setSpan(parent, span) }
}

export function startProcessSpan(parent: Context, a: MessagingAttributes): { span: Span; context: Context } {
  const span = trace
    .getTracer(SCOPE)
    .startSpan(`process ${a.destination}`, { kind: SpanKind.CONSUMER, attributes: attributesOf('process', a) }, parent)
  return { span, context: trace.setSpan(parent, span) }
}

export function endSpan(span: Span | undefined, error?: unknown): void {
  if (span === undefined) return
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
    if (error instanceof Error) span.recordException(error)
    span.setAttribute('error.type', error instanceof Error ? error.name : 'error')
  }
  span.end()
}

let histograms: { provider: unknown; noop: boolean; operation: Histogram; process: Histogram } | undefined

function durationHistograms() {
  // Made again when the app registers a meter provider after the first message.
  const provider = metrics.getMeterProvider()
  if (histograms?.provider === provider) return histograms
  const meter = provider.getMeter(SCOPE)
  histograms = {
    provider,
    // No meter provider registered: the API hands out its no-op meter (a singleton).
    noop: meter === createNoopMeter(),
    operation: meter.createHistogram('messaging.client.operation.duration', {
      unit: 's',
      description: 'Duration of messaging operations initiated by a producer or consumer client.',
    }),
    process: meter.createHistogram('messaging.process.duration', {
      unit: 's',
      description: 'Duration of processing operation.',
    }),
  }
  return histograms
}

const metricAttributes = new WeakMap<MessagingAttributes, Record<string, string>>()

/**
 * Records the time since `startedMs` (a `performance.now()` reading). Takes the start rather than
 * the duration: without a meter provider nothing is recorded, and the clock is not read again for
 * it (once per message on the consumer's path).
 */
export function recordDuration(
  operation: 'send' | 'process',
  startedMs: number,
  a: MessagingAttributes,
  error?: unknown,
): void {
  const h = durationHistograms()
  if (h.noop) return
  const seconds = (performance.now() - startedMs) / 1000
  let attributes: Record<string, string>
  if (error === undefined) {
    // One subscription records with the same attributes every time: build them once.
    let cached = metricAttributes.get(a)
    if (cached === undefined) {
      cached = metricAttributesOf(operation, a)
      metricAttributes.set(a, cached)
    }
    attributes = cached
  } else {
    attributes = { ...metricAttributesOf(operation, a), 'error.type': error instanceof Error ? error.name : 'error' }
  }
  // The conventions keep processing time out of the client operation duration.
  if (operation === 'process') h.process.record(seconds, attributes)
  else h.operation.record(seconds, attributes)
}

function metricAttributesOf(operation: 'send' | 'process', a: MessagingAttributes): Record<string, string> {
  const attributes: Record<string, string> = {
    'messaging.system': a.system,
    'messaging.destination.name': a.destination,
    'messaging.operation.name': operation,
    'messaging.operation.type': operation,
  }
  if (a.group !== undefined) attributes['messaging.consumer.group.name'] = a.group
  return attributes
}
