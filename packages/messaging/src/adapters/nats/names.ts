import { MessagingError } from '@backplane/messaging'

const MAX_NAME = 200
const UNSAFE_NAME_CHARS = /[^A-Za-z0-9_-]/g

function fnv1a(text: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16).padStart(8, '0')
}

/**
 * @internal A stream or consumer name for any text: JetStream names cannot hold `.`, `*`, `>`,
 * whitespace or path separators. A name that had to change gets a hash of the original, so
 * `a.b` and `a_b` do not end up sharing one stream.
 */
export function safeName(raw: string): string {
  const cleaned = raw.replace(UNSAFE_NAME_CHARS, '_')
  if (cleaned === raw && raw.length <= MAX_NAME) return raw
  return `${cleaned.slice(0, MAX_NAME - 9)}_${fnv1a(raw)}`
}

/** @internal The stream created on demand for a topic. */
export function streamNameFor(topic: string, prefix = 'BP_'): string {
  return safeName(`${prefix}${topic}`)
}

/** @internal A group's durable consumer; on a stream shared by several topics the topic is part of it. */
export function consumerNameFor(group: string, topic: string, streamIsTopics: boolean): string {
  return safeName(streamIsTopics ? group : `${group}.${topic}`)
}

/** @internal Throws unless `topic` is a subject messages can be published to (no wildcards, no spaces). */
export function checkSubject(topic: string): void {
  const tokens = topic.split('.')
  if (topic.length === 0 || /\s/.test(topic) || tokens.some((t) => t === '' || t === '*' || t === '>')) {
    throw new MessagingError(
      'MESSAGING_INVALID_OPTIONS',
      `topic ${JSON.stringify(topic)} is not a NATS subject to publish to: expected dot-separated tokens without spaces or the wildcards * and >`,
    )
  }
}

export function checkSubjectForPublish(topic: string): void {
  try {
    checkSubject(topic)
  } catch (error) {
    throw new MessagingError('MESSAGING_INVALID_MESSAGE', (error as Error).message)
  }
}
