import type { Broker } from '@backplane/messaging'
import type { Principal } from './auth.js'
import { BridgeError } from './errors.js'
import type { ResolvedBridgeOptions } from './options.js'
import { parseTopicRef, type TopicMatcher, type TopicRef, topicMatcher } from './topics.js'

/** `[broker:]topic` texts from requests and the config, resolved against the bridge's brokers. */
export interface TopicResolver {
  /** The broker names of the options, in order. */
  readonly brokerNames: readonly string[]
  /** A topic the bridge serves: 400 for a bad name or broker, 404 UNKNOWN_TOPIC outside the allowlist. */
  resolve(text: string, what?: string): TopicRef
  /** The topic's qualified name (`broker:topic`), allowlist not applied. */
  qualify(text: string): string
  /** The connected broker of a topic: 503 NOT_READY until it is connected. */
  brokerOf(ref: TopicRef): Broker
  /** Whether the caller may see an item on this topic in a listing (not if it no longer parses). */
  visible(principal: Principal, topic: string): boolean
}

export function createTopicResolver(
  options: ResolvedBridgeOptions,
  brokers: ReadonlyMap<string, Broker>,
): TopicResolver {
  const brokerNames = Object.keys(options.brokers)
  const defaultBroker = options.defaultBroker ?? (brokerNames[0] as string)
  const names = new Map<string, true>(brokerNames.map((n) => [n, true]))
  const allowlist: TopicMatcher | undefined = options.topics ? topicMatcher(options.topics) : undefined

  return {
    brokerNames,
    resolve(text, what = 'topic') {
      const ref = parseTopicRef(text, names, defaultBroker, what)
      if (allowlist && !allowlist(ref)) {
        throw new BridgeError(404, 'UNKNOWN_TOPIC', `${what} ${ref.qualified} is not in the bridge's topic allowlist`)
      }
      return ref
    },
    qualify(text) {
      return parseTopicRef(text, names, defaultBroker).qualified
    },
    brokerOf(ref) {
      const broker = brokers.get(ref.broker)
      if (!broker) throw new BridgeError(503, 'NOT_READY', `broker ${ref.broker} is not connected yet`)
      return broker
    },
    visible(principal, topic) {
      try {
        return principal.canSubscribe(parseTopicRef(topic, names, defaultBroker))
      } catch {
        return false
      }
    },
  }
}
