/**
 * The rules for every string a client gives that becomes a broker header, a CloudEvents
 * attribute, a message key or a header of a webhook call. They are checked at the API boundary,
 * before a 202: a value every broker and every webhook call can carry unchanged is accepted, any
 * other is refused with a 400 naming the field and the rule. Nothing is dropped or rewritten later.
 *
 * - CloudEvents attribute and extension names: `[a-z0-9]{1,20}` (spec v1.0, 20 enforced).
 * - CloudEvents String values, and message keys: any Unicode except control characters
 *   (U+0000-U+001F, U+007F-U+009F), lone surrogates and noncharacters (the spec's type system),
 *   no white space at either end (NATS headers and HTTP drop it), 1-MAX_VALUE characters.
 *   Webhook calls carry them percent-encoded (CloudEvents HTTP binding 3.1.3.2).
 * - Other header values: visible ASCII and inner spaces (RFC 9110 field-value without obs-text,
 *   which receivers decode inconsistently), 1-MAX_VALUE characters.
 * - CloudEvents `time`: an RFC 3339 timestamp, as the core's `time` publish option takes it.
 */
import { z } from 'zod'
import { BridgeError, type BridgeErrorCode } from './errors.js'

export const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/
/**
 * Members of the CloudEvents JSON format an extension would be mistaken for (SSE frames are that
 * format), and `datacontenttype`, which HTTP carries as Content-Type.
 */
const RESERVED_NAMES = new Set(['data', 'datacontenttype'])
/** Characters of one value; a webhook call's headers must also fit the receiver's header limit (16 KiB in Node). */
export const MAX_VALUE = 1_024

const NOT_CE_STRING = /[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}]/u
const HEADER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/
const EDGE_SPACE = /^\s|\s$/u

export const CE_STRING_RULE = `1-${MAX_VALUE} Unicode characters, without control characters (U+0000-U+001F, U+007F-U+009F), lone surrogates, noncharacters or white space at either end`
export const HEADER_VALUE_RULE = `1-${MAX_VALUE} visible ASCII characters (0x21-0x7E), with spaces only between them; percent-encode anything else`

/** Why `value` is not a CloudEvents String the bridge can carry, or undefined when it is. */
export function ceStringProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty'
  if (value.length > MAX_VALUE) return `is longer than ${MAX_VALUE} characters`
  const bad = NOT_CE_STRING.exec(value)
  if (bad) {
    const code = (bad[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')
    const kind = /\p{Cc}/u.test(bad[0])
      ? 'control character'
      : /\p{Cs}/u.test(bad[0])
        ? 'lone surrogate'
        : 'noncharacter'
    return `holds the ${kind} U+${code} at index ${bad.index}`
  }
  if (EDGE_SPACE.test(value)) return 'starts or ends with white space'
  return undefined
}

function refuse(code: BridgeErrorCode, field: string, problem: string, rule: string): BridgeError {
  const message = `${field} ${problem}: expected ${rule}`
  return new BridgeError(400, code, message, { details: [message] })
}

/** A CloudEvents attribute value (`id`, `source`, `type`, `subject`, an extension...). */
export function checkAttribute(field: string, value: string): string {
  const problem = ceStringProblem(value)
  if (problem) throw refuse('INVALID_CLOUDEVENT', field, problem, CE_STRING_RULE)
  return value
}

// The core's rule for the `time` publish option (src/options.ts): what passes here, it takes.
const TIMESTAMP = z.iso.datetime({ offset: true })
export const TIMESTAMP_RULE =
  'an RFC 3339 timestamp with seconds, an upper-case T, and Z or a +hh:mm / -hh:mm offset (2026-12-01T09:30:00Z, 2026-12-01T10:30:00.25+01:00)'

/** CloudEvents `time` (the Timestamp type): kept as the event's time, so it must be one. */
export function checkTime(field: string, value: string): string {
  if (value.length <= MAX_VALUE && TIMESTAMP.safeParse(value).success) return value
  const problem =
    value.length === 0
      ? 'is empty'
      : value.length > MAX_VALUE
        ? `is longer than ${MAX_VALUE} characters`
        : `has the value ${JSON.stringify(value)}`
  throw refuse('INVALID_CLOUDEVENT', field, problem, TIMESTAMP_RULE)
}

/** An extension attribute name (without `ce-`). */
export function checkAttributeName(field: string, name: string): string {
  if (RESERVED_NAMES.has(name)) {
    throw refuse(
      'INVALID_CLOUDEVENT',
      field,
      `names the reserved attribute ${name}`,
      'an extension name other than data and datacontenttype (send the media type as Content-Type)',
    )
  }
  if (!ATTRIBUTE_NAME.test(name)) {
    throw refuse(
      'INVALID_CLOUDEVENT',
      field,
      'is not a CloudEvents attribute name',
      '1-20 lowercase letters a-z and digits 0-9 (CloudEvents 1.0)',
    )
  }
  return name
}

/** A message key: becomes the Kafka key bytes (UTF-8), NATS `backplane-key` and `ce-partitionkey`. */
export function checkKey(field: string, key: string): string {
  const problem = ceStringProblem(key)
  if (problem) throw refuse('INVALID_KEY', field, problem, CE_STRING_RULE)
  return key
}

/**
 * A header a client sets on a message: `ce-<name>` is a CloudEvents extension and follows those
 * rules; any other is carried as an HTTP header value as it is.
 */
export function checkHeader(field: string, name: string, value: string): string {
  if (name.startsWith('ce-')) {
    checkAttributeName(field, name.slice(3))
    return checkAttribute(field, value)
  }
  return checkHeaderValue(field, value)
}

/** A value carried as an HTTP header as it is: a plain header, or a media type (Content-Type). */
export function checkHeaderValue(field: string, value: string): string {
  if (value.length > MAX_VALUE || !HEADER_VALUE.test(value)) {
    const problem =
      value.length > MAX_VALUE ? `is longer than ${MAX_VALUE} characters` : `has the value ${JSON.stringify(value)}`
    throw refuse('INVALID_HEADER', field, problem, HEADER_VALUE_RULE)
  }
  return value
}

// CloudEvents HTTP binding 3.1.3.2: space, `"`, `%` and every byte outside 0x21-0x7E.
const NEEDS_ENCODING = /[^\x21\x23-\x24\x26-\x7e]/

/** An attribute value as a `ce-*` header value of a webhook call. */
export function encodeHeaderValue(value: string): string {
  if (!NEEDS_ENCODING.test(value)) return value
  let text = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    text +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x22 && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return text
}

const ENCODED_RUN = /(?:%[0-9A-Fa-f]{2})+/g

/**
 * A `ce-*` header value of a binary-mode request, decoded per the binding. Raw non-ASCII is
 * refused: Node reads header bytes as Latin-1, so UTF-8 sent raw would arrive garbled.
 */
export function decodeHeaderValue(field: string, value: string): string {
  if (/[^\x20-\x7e\t]/.test(value)) {
    throw refuse(
      'INVALID_CLOUDEVENT',
      field,
      'holds a byte outside printable ASCII',
      'non-ASCII attribute values percent-encoded as UTF-8 (CloudEvents HTTP binding 3.1.3.2)',
    )
  }
  if (!value.includes('%')) return value
  return value.replace(ENCODED_RUN, (run) => {
    try {
      return decodeURIComponent(run)
    } catch {
      throw refuse('INVALID_CLOUDEVENT', field, `has ${run}, which is not UTF-8`, 'percent-encoded UTF-8')
    }
  })
}
