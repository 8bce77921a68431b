import { BridgeError } from './errors.js'

/**
 * JSON.parse takes any depth, but JSON.stringify (SSE frames, structured data re-encoded for the
 * broker) runs out of stack at a few thousand levels: a body deeper than the limit is refused
 * before it is accepted, rather than accepted and then impossible to deliver.
 */
export const DEFAULT_JSON_DEPTH = 64

const OPEN_OBJECT = 0x7b
const OPEN_ARRAY = 0x5b
const CLOSE_OBJECT = 0x7d
const CLOSE_ARRAY = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Scans the bytes, without parsing: 400 JSON_TOO_DEEP when arrays and objects nest deeper than `limit`. */
export function checkJsonDepth(body: Uint8Array, limit: number): void {
  let depth = 0
  let inString = false
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]
    if (inString) {
      if (byte === BACKSLASH) i++
      else if (byte === QUOTE) inString = false
    } else if (byte === QUOTE) inString = true
    else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      if (++depth > limit) {
        throw new BridgeError(
          400,
          'JSON_TOO_DEEP',
          `the JSON nests arrays and objects deeper than ${limit} levels (limits.jsonDepth)`,
        )
      }
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) depth--
  }
}
