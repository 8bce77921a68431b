import { BridgeError } from './errors.js'

/** A topic on one of the bridge's brokers: `kafka:orders` is topic `orders` on broker `kafka`. */
export interface TopicRef {
  readonly broker: string
  readonly topic: string
  /** `broker:topic`, the name patterns and scopes are matched against. */
  readonly qualified: string
}

// Names every broker accepts: Kafka allows [A-Za-z0-9._-] (249 characters at most); NATS
// subjects are dot-separated tokens, so no empty token (`a..b`, a leading or trailing dot).
const TOPIC_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/
const MAX_TOPIC = 249

export function checkTopicName(topic: string, what = 'topic'): void {
  if (topic.length === 0 || topic.length > MAX_TOPIC || !TOPIC_NAME.test(topic)) {
    throw new BridgeError(
      400,
      'INVALID_TOPIC',
      `invalid ${what} ${JSON.stringify(topic)}: use 1-${MAX_TOPIC} characters among A-Z a-z 0-9 . _ -, with no empty dot-separated part`,
    )
  }
}

/** Resolves `[broker:]topic` against the configured brokers; no prefix means the default broker. */
export function parseTopicRef(
  text: string,
  brokers: ReadonlyMap<string, unknown>,
  defaultBroker: string,
  what = 'topic',
): TopicRef {
  const colon = text.indexOf(':')
  let broker = defaultBroker
  let topic = text
  if (colon !== -1) {
    broker = text.slice(0, colon)
    topic = text.slice(colon + 1)
    if (!brokers.has(broker)) {
      throw new BridgeError(
        400,
        'UNKNOWN_BROKER',
        `unknown broker ${JSON.stringify(broker)} in ${what} ${JSON.stringify(text)}: the bridge has ${[...brokers.keys()].map((b) => JSON.stringify(b)).join(', ')}`,
      )
    }
  }
  checkTopicName(topic, what)
  return { broker, topic, qualified: `${broker}:${topic}` }
}

/**
 * Topic patterns, as in the allowlist and API key scopes: `*` matches any characters (dots
 * included); a pattern with a `broker:` prefix matches on that broker only, one without on any.
 * `*` alone matches everything.
 */
export type TopicMatcher = (ref: TopicRef) => boolean

function globToRegExp(glob: string): RegExp {
  const source = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  return new RegExp(`^${source}$`)
}

export function topicMatcher(patterns: readonly string[]): TopicMatcher {
  if (patterns.length === 0) return () => false
  if (patterns.includes('*')) return () => true
  const qualified: RegExp[] = []
  const bare: RegExp[] = []
  for (const pattern of patterns) {
    if (pattern.includes(':')) qualified.push(globToRegExp(pattern))
    else bare.push(globToRegExp(pattern))
  }
  return (ref) => {
    for (const r of bare) if (r.test(ref.topic)) return true
    for (const r of qualified) if (r.test(ref.qualified)) return true
    return false
  }
}

/** A dead-letter topic named in a subscription or route (`false` turns dead-lettering off). */
export function checkDeadLetter(deadLetter: string | false | undefined): void {
  if (typeof deadLetter === 'string') checkTopicName(deadLetter, 'deadLetter')
}
