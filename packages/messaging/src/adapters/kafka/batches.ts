import type { DeliveryHandler, LoggerLike, TransportDelivery } from '@backplane/messaging'
import type { EachBatchPayload, KafkaMessage } from 'kafkajs'
import { asError } from './connection.js'
import { fromKafkaHeaders } from './headers.js'
import type { OffsetCommitter } from './offsets.js'

type Outcome = 'acked' | 'released'

const EMPTY = new Uint8Array(0)
/** How long a partition waits before a released message (failed dead-lettering) is fetched again. */
const RELEASE_PAUSE_MS = 1_000

async function deliverMessage(
  topic: string,
  message: KafkaMessage,
  payload: EachBatchPayload,
  deliver: DeliveryHandler,
  logger: LoggerLike,
): Promise<Outcome> {
  let outcome: Outcome | undefined
  const settle = (result: Outcome) => async () => {
    outcome ??= result
  }
  const delivery: TransportDelivery = {
    topic,
    key: message.key === null ? undefined : message.key.toString('utf8'),
    headers: fromKafkaHeaders(message.headers),
    value: message.value ?? EMPTY,
    redeliveries: 0,
    ack: settle('acked'),
    release: settle('released'),
    heartbeat: () => payload.heartbeat(),
  }
  try {
    await deliver(delivery)
  } catch (error) {
    logger.error({ system: 'kafka', topic, offset: message.offset, err: asError(error).message }, 'delivery failed')
  }
  // Neither acked nor released is a core bug: keeping the message is the safe side.
  return outcome ?? 'released'
}

export function batchHandler(
  deliver: DeliveryHandler,
  isClosing: () => boolean,
  committer: OffsetCommitter,
  logger: LoggerLike,
): { handle: (payload: EachBatchPayload) => Promise<void>; idle: () => Promise<void> } {
  let active = 0
  let waiters: (() => void)[] = []
  async function handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload
    for (const message of batch.messages) {
      if (isClosing()) {
        // Closing: fetch nothing more for this partition while the others finish.
        payload.pause()
        return
      }
      if (!payload.isRunning() || payload.isStale()) return
      const outcome = await deliverMessage(batch.topic, message, payload, deliver, logger)
      if (outcome === 'released') {
        // Unresolved, the offset stays where it is: the message is fetched again, after a pause
        // so that a failing dead-letter topic does not turn into a busy loop.
        if (!isClosing()) setTimeout(payload.pause(), RELEASE_PAUSE_MS).unref()
        return
      }
      // Resolved moves kafkajs's fetch position; acked is what the next commit may cover.
      payload.resolveOffset(message.offset)
      committer.acked(batch.partition, message.offset)
      try {
        // Throttled by kafkajs to heartbeatInterval; throws when the group rebalances, which
        // ends the batch and lets kafkajs rejoin: commit what was handled before it does.
        await payload.heartbeat()
      } catch (error) {
        await committer.flush()
        throw error
      }
    }
  }
  return {
    async handle(payload) {
      active++
      try {
        await handle(payload)
      } finally {
        active--
        if (active === 0) {
          const current = waiters
          waiters = []
          for (const resolve of current) resolve()
        }
      }
    },
    /** Resolves once no batch is being handled. */
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  }
}
