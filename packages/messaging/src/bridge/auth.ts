import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { BridgeError } from './errors.js'
import type { ResolvedBridgeOptions } from './options.js'
import { type TopicRef, topicMatcher } from './topics.js'

/** Who is calling, and what they may do. */
export interface Principal {
  readonly id: string
  canPublish(ref: TopicRef): boolean
  canSubscribe(ref: TopicRef): boolean
  readonly publishScopes: readonly string[]
  readonly subscribeScopes: readonly string[]
}

export interface Authenticator {
  /** `allowQueryToken`: EventSource cannot send headers, so SSE also takes `?access_token=`. */
  authenticate(request: IncomingMessage, query: URLSearchParams | undefined): Principal
  /** No keys and insecure: every request is let in. */
  readonly open: boolean
}

const anonymous: Principal = {
  id: 'anonymous',
  canPublish: () => true,
  canSubscribe: () => true,
  publishScopes: ['*'],
  subscribeScopes: ['*'],
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * Bearer API keys. Keys are looked up by their SHA-256, so the comparison does not leak the
 * secret through timing, and a config may hold only the hash (`sha256:` instead of `key:`).
 */
export function createAuthenticator(options: ResolvedBridgeOptions): Authenticator {
  const keys = options.auth.keys
  if (keys.length === 0) {
    if (!options.insecure) {
      throw new BridgeError(
        500,
        'BRIDGE_INSECURE',
        'no API keys: set auth.keys, or insecure: true to accept requests without a key (trusted networks only)',
      )
    }
    return { open: true, authenticate: () => anonymous }
  }
  const byHash = new Map<string, Principal>()
  for (const key of keys) {
    const canPublish = topicMatcher(key.publish)
    const canSubscribe = topicMatcher(key.subscribe)
    const hash = (key.sha256 ?? sha256(key.key as string)).toLowerCase()
    if (byHash.has(hash)) {
      throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `auth.keys: ${key.id} has the same secret as another key`)
    }
    byHash.set(hash, {
      id: key.id,
      canPublish,
      canSubscribe,
      publishScopes: key.publish,
      subscribeScopes: key.subscribe,
    })
  }
  // Tokens already verified, so the common case skips hashing: bounded, known keys only.
  const verified = new Map<string, Principal>()
  return {
    open: false,
    authenticate(request, query) {
      const header = request.headers.authorization
      let token: string | undefined
      if (header !== undefined) {
        const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
        if (!match) {
          throw new BridgeError(401, 'UNAUTHENTICATED', 'malformed Authorization header: expected "Bearer <API key>"')
        }
        token = match[1]
      } else {
        token = query?.get('access_token') ?? undefined
      }
      if (token === undefined || token === '') {
        throw new BridgeError(401, 'UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer <API key>"')
      }
      const known = verified.get(token)
      if (known) return known
      const principal = byHash.get(sha256(token))
      if (!principal) throw new BridgeError(401, 'UNAUTHENTICATED', 'unknown API key')
      if (verified.size < 1_024) verified.set(token, principal)
      return principal
    },
  }
}

export function forbidden(principal: Principal, action: 'publish to' | 'subscribe to', ref: TopicRef): BridgeError {
  const scopes = action === 'publish to' ? principal.publishScopes : principal.subscribeScopes
  return new BridgeError(
    403,
    'FORBIDDEN',
    `API key ${JSON.stringify(principal.id)} may not ${action} ${ref.qualified} (its ${action === 'publish to' ? 'publish' : 'subscribe'} scopes: ${scopes.length > 0 ? scopes.join(', ') : 'none'})`,
  )
}
