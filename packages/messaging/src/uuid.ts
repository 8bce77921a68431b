import { randomFillSync } from 'node:crypto'

/**
 * Random (version 4) UUIDs, as crypto.randomUUID makes them, but as flat strings.
 * randomUUID joins 20 pieces with `+`, which V8 keeps as a tree of cons strings until something
 * flattens it: about 480 bytes of heap per id instead of 56. Every message carries its id in its
 * headers, and a broker that queues messages (or a consumer that holds them) keeps all of that
 * alive; copying it through the young generation was a good part of what publishing cost.
 * Like randomUUID, the bytes come from the CSPRNG a batch at a time.
 */
const IDS_PER_FILL = 256
const entropy = Buffer.allocUnsafe(16 * IDS_PER_FILL)
let used = entropy.length
const text = Buffer.alloc(36, '-')
// Where each of the 16 bytes goes in `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]
const HEX = new Uint8Array(512)
for (let byte = 0; byte < 256; byte++) {
  HEX[2 * byte] = '0123456789abcdef'.charCodeAt(byte >> 4)
  HEX[2 * byte + 1] = '0123456789abcdef'.charCodeAt(byte & 15)
}

export function randomUUID(): string {
  if (used === entropy.length) {
    randomFillSync(entropy)
    used = 0
  }
  const from = used
  used += 16
  for (let i = 0; i < 16; i++) {
    let byte = entropy[from + i] as number
    // The version (4) and the RFC 4122 variant bits, as randomUUID sets them.
    if (i === 6) byte = (byte & 0x0f) | 0x40
    else if (i === 8) byte = (byte & 0x3f) | 0x80
    const at = AT[i] as number
    text[at] = HEX[2 * byte] as number
    text[at + 1] = HEX[2 * byte + 1] as number
  }
  return text.toString('latin1', 0, 36)
}
