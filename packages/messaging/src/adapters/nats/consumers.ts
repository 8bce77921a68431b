import { MessagingError } from '@backplane/messaging'
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  type JetStreamManager,
} from '@nats-io/jetstream'
import { nanos } from '@nats-io/transport-node'
import { apiErrorCode, JS_ERR } from './errors.js'
import type { ResolvedNatsOptions } from './options.js'

export interface ConsumerSpec {
  stream: string
  topic: string
  /** Durable name for a group; undefined for a subscriber's own ephemeral consumer. */
  durable: string | undefined
  from: 'earliest' | 'latest'
}

function consumerConfig(spec: ConsumerSpec, opts: ResolvedNatsOptions, startSeq: number | undefined) {
  const config: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: spec.from === 'earliest' ? DeliverPolicy.All : DeliverPolicy.New,
    ack_wait: nanos(opts.ackWait),
    // Retries and dead letters belong to the core: JetStream redelivers for ever.
    max_deliver: -1,
    filter_subject: spec.topic,
  }
  if (spec.durable !== undefined) config.durable_name = spec.durable
  else config.inactive_threshold = nanos(opts.inactiveThreshold)
  if (startSeq !== undefined) {
    config.deliver_policy = DeliverPolicy.StartSequence
    config.opt_start_seq = startSeq
  }
  return config
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name)
  } catch (error) {
    if (apiErrorCode(error) === JS_ERR.consumerNotFound) return undefined
    throw error
  }
}

/**
 * Finds the group's durable consumer or creates it; its deliver policy is fixed when it is
 * created (a group that exists keeps its position whatever `from` says now). Ephemeral
 * consumers are always created. `startSeq` is where a replacement for a lost consumer starts.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  spec: ConsumerSpec,
  opts: ResolvedNatsOptions,
  startSeq: number | undefined,
): Promise<{ info: ConsumerInfo; created: boolean }> {
  const config = consumerConfig(spec, opts, startSeq)
  if (spec.durable === undefined) return { info: await jsm.consumers.add(spec.stream, config), created: true }
  const existing = await consumerInfo(jsm, spec.stream, spec.durable)
  if (existing) return { info: checkPull(existing), created: false }
  try {
    return { info: checkPull(await jsm.consumers.add(spec.stream, config)), created: true }
  } catch (error) {
    // Another member created it meanwhile, with another start: theirs stands.
    const raced = await consumerInfo(jsm, spec.stream, spec.durable)
    if (raced) return { info: checkPull(raced), created: false }
    throw error
  }
}

function checkPull(info: ConsumerInfo): ConsumerInfo {
  if (info.config.deliver_subject) {
    throw new MessagingError(
      'MESSAGING_SUBSCRIBE_FAILED',
      `consumer ${info.name} on stream ${info.stream_name} is a push consumer; a group needs a pull consumer: delete it or use another group name`,
    )
  }
  return info
}
