import type { TransportMessage } from '@backplane/messaging'
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node'

const KEY_HEADER = 'backplane-key'

function headerValue(value: string): string {
  // Most values have no line break: skip the regular expression for them.
  return value.includes('\n') || value.includes('\r') ? value.replace(/[\r\n]+/g, ' ') : value
}

// JetStream's de-duplication header (what js.publish's `msgID` option sets).
const MSG_ID_HEADER = 'Nats-Msg-Id'

/**
 * With `msgId`, the headers carry JetStream's Nats-Msg-Id too: appended here rather than passed
 * as js.publish's `msgID`, which sets it with a search of every name to replace, then another to
 * append (nats.js keeps headers in a Map but finds a name by listing all of them).
 */
export function toNatsHeaders(message: TransportMessage, msgId?: string): MsgHdrs {
  const h = natsHeaders()
  const { headers } = message
  for (const name in headers) {
    const value = headerValue(headers[name] as string)
    const lower = name.toLowerCase()
    // The core's names are lowercase and unique: append, without set's search for the name to
    // replace. A name that lowercases onto another one replaces it, as before.
    if (lower === name) h.append(name, value)
    else h.set(lower, value)
  }
  if (message.key !== undefined) h.set(KEY_HEADER, encodeURIComponent(message.key))
  if (msgId !== undefined) h.append(MSG_ID_HEADER, msgId)
  return h
}

function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // written by some other publisher, not URI-encoded
  }
}

export function fromNatsHeaders(h: MsgHdrs | undefined): { key: string | undefined; headers: Record<string, string> } {
  const headers: Record<string, string> = {}
  let key: string | undefined
  if (!h) return { key, headers }
  // Iterated rather than keys() + get(name): get searches every name again.
  for (const [name, values] of h) {
    const lower = name.toLowerCase()
    const value = values[0] ?? ''
    if (lower === KEY_HEADER) key = decodeKey(value)
    // Nats-Msg-Id, Nats-Expected-*: protocol, not the application's headers.
    else if (!lower.startsWith('nats-')) headers[lower] = value
  }
  return { key, headers }
}
