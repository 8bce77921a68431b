import { backoffDelay, sleep } from '@backplane/internal'
import type { DeliveryHandler, LoggerLike, TransportSubscription } from '@backplane/messaging'
import type {
  Consumer,
  ConsumerInfo,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from '@nats-io/jetstream'
import { type ConsumerSpec, ensureConsumer } from './consumers.js'
import { inFlightCounter, runDelivery } from './deliveries.js'
import { apiErrorCode, errorText, JS_ERR } from './errors.js'
import { ackBatcher, JetStreamDelivery, sendAck } from './jetstream-delivery.js'
import type { ResolvedNatsOptions } from './options.js'
import type { StreamRef, StreamRegistry } from './streams.js'

// How long one pull request waits at the server. A fetch is re-issued after it anyway, so a
// consumer whose pull was lost (server restart, consumer re-created) is back within this time.
const PULL_EXPIRES_MS = 5_000
// On close, a pull the server is answering right now gets this long to arrive before we
// unsubscribe (what arrives after that waits for ackWait before it is redelivered).
const CLOSE_GRACE_MS = 100
// Pauses after failed pulls: 200 ms doubling up to 2 s.
const PULL_RETRY = { initialDelay: 200, maxDelay: 2_000, factor: 2, jitter: 'none' } as const

interface PullContext {
  js: JetStreamClient
  jsm: JetStreamManager
  streams: StreamRegistry
  opts: ResolvedNatsOptions
  logger: LoggerLike
  spec: ConsumerSpec
  stream: StreamRef
  info: ConsumerInfo
  window: number
  deliver: DeliveryHandler
  connected: () => boolean
}

/**
 * The pull loop of one subscription: fetch as many messages as there is room for (deliveries
 * not yet settled plus messages asked for and not yet arrived stay under `window`), hand each to
 * the core without waiting, and fetch again as soon as half the window is free, while earlier
 * pulls are still arriving: the server always has a pull to answer, rather than one round trip
 * per window. Every fetch is a new pull request, so the loop needs nothing special after a
 * reconnect; any failure (server away, consumer or stream gone) makes it look the consumer up
 * again, re-create it if it is gone, and go on after a short backoff. nats.js v3's `consume()`
 * also resumes after a restart, but it always keeps a pull open: stopping it leaves what the
 * server is sending leased to nobody until ackWait. A fetch asks for a known number, so close can
 * wait for what is on its way and hand it back.
 */
export function pullLoop(ctx: PullContext): TransportSubscription {
  const { spec, logger, window } = ctx
  const inFlight = inFlightCounter()
  const unsettled = new Set<number>()
  let consumer: Consumer | undefined = ctx.js.consumers.getConsumerFromInfo(ctx.info)
  let consumerName = ctx.info.name
  // Highest stream sequence seen: where a lost consumer's replacement starts.
  let cursor = ctx.info.delivered.stream_seq
  let streamCreated = ctx.stream.created
  // Open pulls, with what each still has to bring; their sum counts against the window.
  const pulls = new Map<ConsumerMessages, Promise<void>>()
  let requested = 0
  let pullFailure: { error: unknown } | undefined
  let closing = false
  const stopped = new AbortController()
  const refill = Math.ceil(window / 2)
  const acks = ackBatcher(logger)

  function take(msg: JsMsg): void {
    if (closing) {
      // Fetched but not handed over: give it back now rather than after ackWait.
      sendAck(msg, 'nak', logger)
      return
    }
    const seq = msg.info.streamSequence
    cursor = Math.max(cursor, seq)
    unsettled.add(seq)
    inFlight.add()
    runDelivery(ctx.deliver, new JetStreamDelivery(spec.topic, msg, logger, acks), logger, () => {
      unsettled.delete(seq)
      inFlight.done()
    })
  }

  async function reattach(): Promise<void> {
    const stream = await ctx.streams.ensure(spec.topic)
    spec.stream = stream.name
    // A replacement starts after the last message seen, or at the oldest one still being
    // handled; in a stream made anew (deleted and re-created), at its start.
    const renewed = stream.created !== streamCreated
    const startSeq = renewed ? 1 : Math.min(cursor + 1, ...unsettled)
    const { info, created } = await ensureConsumer(ctx.jsm, spec, ctx.opts, startSeq)
    if (created) {
      logger.warn({ topic: spec.topic, consumer: info.name, startSeq }, 'nats consumer was gone; re-created it')
    }
    if (renewed) {
      cursor = 0
      streamCreated = stream.created
    }
    consumerName = info.name
    consumer = ctx.js.consumers.getConsumerFromInfo(info)
  }

  /** Hands over what one pull brings; a failure is reported to the loop, which starts over. */
  async function drain(pull: ConsumerMessages, asked: number): Promise<void> {
    let arrived = 0
    try {
      for await (const msg of pull) {
        arrived++
        requested--
        take(msg)
      }
    } catch (error) {
      if (!closing) pullFailure ??= { error }
    } finally {
      requested -= asked - arrived
      pulls.delete(pull)
      inFlight.wake()
    }
  }

  async function pullOnce(): Promise<void> {
    await inFlight.until(() => closing || pullFailure !== undefined || window - inFlight.count - requested >= refill)
    if (closing) return
    if (pullFailure) {
      const { error } = pullFailure
      pullFailure = undefined
      throw error
    }
    if (!consumer) await reattach()
    const current = consumer as Consumer
    const asked = window - inFlight.count - requested
    const pull = await current.fetch({ max_messages: asked, expires: PULL_EXPIRES_MS })
    requested += asked
    pulls.set(pull, drain(pull, asked))
  }

  async function onFailure(error: unknown, failures: number): Promise<void> {
    consumer = undefined
    const code = apiErrorCode(error)
    if (code === JS_ERR.streamNotFound) ctx.streams.forget(spec.topic)
    const fields = { topic: spec.topic, consumer: consumerName, err: errorText(error), failures }
    if (failures === 1) logger.warn(fields, 'nats pull failed; retrying')
    else logger.debug(fields, 'nats pull failed again; retrying')
    const pause = backoffDelay(PULL_RETRY, failures)
    await sleep(pause, stopped.signal)
  }

  const running = (async () => {
    let failures = 0
    while (!closing) {
      try {
        await pullOnce()
        if (failures > 0) logger.info({ topic: spec.topic, consumer: consumerName }, 'nats consumer pulling again')
        failures = 0
      } catch (error) {
        if (closing) break
        await onFailure(error, ++failures)
      }
    }
  })()

  let closed: Promise<void> | undefined
  return {
    close() {
      closed ??= (async () => {
        closing = true
        stopped.abort()
        inFlight.wake()
        const open = [...pulls]
        if (open.length > 0) {
          await Promise.race([
            Promise.all(open.map(([pull]) => pull.closed().catch(() => undefined))),
            sleep(CLOSE_GRACE_MS),
          ])
          for (const [pull] of open) pull.stop()
          await Promise.all(open.map(([, drained]) => drained))
        }
        await running
        await inFlight.until(() => inFlight.count === 0)
        // Before the caller's flush round trip, so that it covers every ack.
        acks.flush()
        // While the server is away, leave it to inactiveThreshold rather than wait for a timeout.
        if (spec.durable === undefined && ctx.connected()) {
          await ctx.jsm.consumers.delete(spec.stream, consumerName).catch((error: unknown) => {
            logger.debug({ topic: spec.topic, err: errorText(error) }, 'nats ephemeral consumer not deleted')
          })
        }
      })()
      return closed
    },
  }
}
