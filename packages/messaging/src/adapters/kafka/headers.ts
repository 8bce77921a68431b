import type { TransportMessage } from '@backplane/messaging'
import type { IHeaders, Message } from 'kafkajs'

/**
 * @internal The core's `ce-*` attributes travel as `ce_*` (CloudEvents Kafka binding). Values stay
 * strings: kafkajs writes them as UTF-8 straight into the record, where a Buffer per header would
 * be one more allocation and copy each.
 */
export function toKafkaHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name in headers) {
    out[name.startsWith('ce-') ? `ce_${name.slice(3)}` : name] = headers[name] as string
  }
  return out
}

/** @internal Back to the core's shape: lowercase names, `ce-*`, strings; of a repeated header the last wins, as in Kafka's lastHeader. */
export function fromKafkaHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (!headers) return out
  for (const [raw, value] of Object.entries(headers)) {
    const last = Array.isArray(value) ? value[value.length - 1] : value
    if (last === undefined) continue
    const name = raw.toLowerCase()
    out[name.startsWith('ce_') ? `ce-${name.slice(3)}` : name] = typeof last === 'string' ? last : last.toString('utf8')
  }
  return out
}

export function toKafkaMessage(message: TransportMessage): Message {
  const { value } = message
  return {
    key: message.key ?? null,
    value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    headers: toKafkaHeaders(message.headers),
  }
}
