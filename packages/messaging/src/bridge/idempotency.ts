import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { BridgeError } from './errors.js'

/** An answer the bridge gives (and gives again to a retry with the same Idempotency-Key). */
export interface Answer {
  status: number
  body: unknown
}

interface Entry {
  fingerprint: string
  answer: Promise<Answer>
}

const KEY = /^[\x21-\x7e]{1,255}$/

/**
 * Remembers Idempotency-Key → answer for `ttlMs` (at most `max` keys, least recently used
 * dropped first). A retry gets the first answer and publishes nothing; a retry that arrives
 * while the first is still in progress waits for it. Failures (5xx) are forgotten, so the
 * retry publishes. The same key with another request body is refused (422).
 */
export class IdempotencyCache {
  private readonly entries: LRUCache<string, Entry>

  constructor(options: { ttlMs: number; max: number }) {
    this.entries = new LRUCache<string, Entry>({ max: options.max, ttl: options.ttlMs, ttlAutopurge: false })
  }

  static checkKey(key: string): void {
    if (!KEY.test(key)) {
      throw new BridgeError(400, 'INVALID_REQUEST', 'Idempotency-Key: expected 1-255 visible ASCII characters')
    }
  }

  /** `scope` keeps callers (API keys) and topics apart; `fingerprint` identifies the request. */
  run(scope: string, key: string, fingerprint: string, work: () => Promise<Answer>): Promise<Answer> {
    const id = `${scope}\u0000${key}`
    const existing = this.entries.get(id)
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        return Promise.reject(
          new BridgeError(
            422,
            'IDEMPOTENCY_KEY_REUSED',
            'this Idempotency-Key was used for a different request: use a new key for a new message',
          ),
        )
      }
      return existing.answer
    }
    const answer = work().then(
      (result) => {
        if (result.status >= 500) this.forget(id, entry)
        return result
      },
      (error: unknown) => {
        this.forget(id, entry)
        throw error
      },
    )
    const entry: Entry = { fingerprint, answer }
    this.entries.set(id, entry)
    return answer
  }

  private forget(id: string, entry: Entry): void {
    if (this.entries.get(id) === entry) this.entries.delete(id)
  }
}

export function fingerprint(...parts: (string | Uint8Array)[]): string {
  const hash = createHash('sha256')
  for (const part of parts) {
    hash.update(part)
    hash.update('\u0000')
  }
  return hash.digest('base64url')
}

/**
 * A message id derived from the idempotency key, in UUID form: the same request retried
 * through any bridge replica (or after a restart) yields the same CloudEvents id, so consumers
 * with `dedupe` drop a second copy even where the bridge's memory could not.
 */
export function derivedId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex')
  const variant = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}
