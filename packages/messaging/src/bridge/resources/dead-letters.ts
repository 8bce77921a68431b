import { type Broker, type DeadLetter, type DeadLetters, MessagingError } from '@backplane/messaging'
import { z } from 'zod'
import { forbidden, type Principal } from '../auth.js'
import type { BridgeContext } from '../context.js'
import { defineEndpoint, type Endpoint, type Exchange } from '../endpoint.js'
import { BridgeError } from '../errors.js'
import type { TopicRef } from '../topics.js'
import { readJsonInput } from './json-input.js'

export type DeadLettersContext = Pick<BridgeContext, 'options' | 'logger' | 'auth' | 'topics'>

// A listing answers this many unless `limit` says otherwise, and never more than LIST_MAX.
const LIST_DEFAULT = 100
const LIST_MAX = 1_000
const FILTER_PARAMS = ['reason', 'since', 'until', 'id', 'status'] as const
const LIST_PARAMS = new Set<string>(['topic', 'deadLetterTopic', 'limit', ...FILTER_PARAMS])
const GET_PARAMS = new Set(['topic', 'deadLetterTopic'])

const replayInputSchema = z.strictObject({
  topic: z.string(),
  deadLetterTopic: z.string().optional(),
  // Checked field by field by the broker's own filter schema (400 naming the field).
  filter: z.record(z.string(), z.unknown()).optional(),
})

function checkParams(query: URLSearchParams | undefined, allowed: ReadonlySet<string>): URLSearchParams {
  const params = query ?? new URLSearchParams()
  for (const name of params.keys()) {
    if (!allowed.has(name)) {
      throw new BridgeError(
        400,
        'INVALID_REQUEST',
        `unknown query parameter ${JSON.stringify(name)}: expected ${[...allowed].join(', ')}`,
      )
    }
  }
  return params
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name)
  if (value === null || value === '') {
    throw new BridgeError(
      400,
      'INVALID_REQUEST',
      `query parameter ${name} is required: the topic the dead letters came from`,
    )
  }
  return value
}

function limitOf(text: string | null): number {
  if (text === null) return LIST_DEFAULT
  const limit = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN
  if (!(limit >= 1 && limit <= LIST_MAX)) {
    throw new BridgeError(
      400,
      'INVALID_REQUEST',
      `limit: expected a whole number from 1 to ${LIST_MAX}, got ${JSON.stringify(text)}`,
    )
  }
  return limit
}

/** The broker's refusal as the bridge answers it: bad filters are the caller's, the rest the broker's. */
function answerFailure(error: unknown): unknown {
  if (!MessagingError.is(error)) return error
  if (error.code === 'MESSAGING_INVALID_OPTIONS' || error.code === 'MESSAGING_UNSUPPORTED') {
    return new BridgeError(400, 'INVALID_REQUEST', error.message, { details: error.details })
  }
  return new BridgeError(
    503,
    'BROKER_UNAVAILABLE',
    `the broker could not read or replay the dead letters: ${error.message}`,
    {
      cause: error,
    },
  )
}

function summary(entry: DeadLetter) {
  return {
    id: entry.id,
    position: entry.position,
    topic: entry.topic,
    deadLetterTopic: entry.deadLetterTopic,
    key: entry.key,
    reason: entry.reason,
    error: entry.error,
    attempts: entry.attempts,
    group: entry.group,
    at: entry.at.toISOString(),
    status: entry.status,
    replayedAt: entry.replayedAt?.toISOString(),
  }
}

/** Everything about one dead letter; a body that is not JSON or text comes as `data_base64`. */
export function deadLetterView(entry: DeadLetter) {
  const body =
    entry.data instanceof Uint8Array
      ? { data_base64: Buffer.from(entry.data).toString('base64') }
      : { data: entry.data }
  return { ...summary(entry), headers: entry.headers, ...body }
}

/**
 * `/v1/dead-letters`: list, show and replay the dead letters of a topic (`?topic=[broker:]name`).
 * Reading needs the subscribe scope on the topic, replaying the publish scope; a `deadLetterTopic`
 * named explicitly needs the subscribe scope too.
 */
export function deadLetterEndpoints(ctx: DeadLettersContext): Endpoint[] {
  const { options, logger, auth, topics } = ctx
  const authenticate = ({ request }: Exchange) => auth.authenticate(request, undefined)

  /** The topic's dead letters, if the caller may `action` the topic (and read an explicit dead-letter topic). */
  function open(
    principal: Principal,
    action: 'subscribe to' | 'publish to',
    topicText: string,
    deadLetterText: string | undefined,
  ): { ref: TopicRef; dead: DeadLetters } {
    const ref = topics.resolve(topicText)
    const allowed = action === 'publish to' ? principal.canPublish(ref) : principal.canSubscribe(ref)
    if (!allowed) throw forbidden(principal, action, ref)
    let deadLetterTopic: string | undefined
    if (deadLetterText !== undefined) {
      const dlq = topics.resolve(deadLetterText, 'deadLetterTopic')
      if (dlq.broker !== ref.broker) {
        throw new BridgeError(
          400,
          'INVALID_REQUEST',
          `deadLetterTopic ${dlq.qualified} is not on broker ${ref.broker}, where ${ref.qualified} is`,
        )
      }
      if (!principal.canSubscribe(dlq)) throw forbidden(principal, 'subscribe to', dlq)
      deadLetterTopic = dlq.topic
    }
    const broker: Broker = topics.brokerOf(ref)
    if (typeof broker.deadLetters !== 'function') {
      throw new BridgeError(
        400,
        'INVALID_REQUEST',
        `broker ${ref.broker} cannot read dead letters back: its @backplane/messaging is too old`,
      )
    }
    // The scans end when the request would time out anyway.
    const signal = AbortSignal.timeout(options.limits.requestTimeout)
    return { ref, dead: broker.deadLetters(ref.topic, { deadLetterTopic, signal }) }
  }

  return [
    defineEndpoint({
      path: '/v1/dead-letters/replay',
      resolve: authenticate,
      methods: {
        async POST({ request }, principal) {
          const input = await readJsonInput(request, replayInputSchema, options.limits)
          const { ref, dead } = open(principal, 'publish to', input.topic, input.deadLetterTopic)
          try {
            const outcome = await dead.replay(input.filter ?? {})
            logger.info(
              { topic: ref.qualified, replayed: outcome.replayed, skipped: outcome.skipped, by: principal.id },
              'dead letters replayed',
            )
            return { status: 200, body: { topic: ref.qualified, deadLetterTopic: dead.deadLetterTopic, ...outcome } }
          } catch (error) {
            throw answerFailure(error)
          }
        },
      },
    }),
    defineEndpoint({
      path: '/v1/dead-letters',
      resolve: authenticate,
      methods: {
        async GET({ query }, principal) {
          const params = checkParams(query, LIST_PARAMS)
          const filter: Record<string, unknown> = { limit: limitOf(params.get('limit')) }
          for (const name of FILTER_PARAMS) {
            const value = params.get(name)
            if (value !== null) filter[name] = value
          }
          const { ref, dead } = open(
            principal,
            'subscribe to',
            required(params, 'topic'),
            params.get('deadLetterTopic') ?? undefined,
          )
          try {
            const entries = await dead.list(filter)
            return {
              status: 200,
              body: {
                topic: ref.qualified,
                deadLetterTopic: dead.deadLetterTopic,
                count: entries.length,
                deadLetters: entries.map(summary),
              },
            }
          } catch (error) {
            throw answerFailure(error)
          }
        },
      },
    }),
    defineEndpoint({
      path: '/v1/dead-letters/{id*}',
      resolve: authenticate,
      methods: {
        async GET({ params: path, query }, principal) {
          const params = checkParams(query, GET_PARAMS)
          const { dead } = open(
            principal,
            'subscribe to',
            required(params, 'topic'),
            params.get('deadLetterTopic') ?? undefined,
          )
          let entry: DeadLetter | undefined
          try {
            entry = await dead.get(path.id as string)
          } catch (error) {
            throw answerFailure(error)
          }
          if (entry === undefined) {
            throw new BridgeError(
              404,
              'NOT_FOUND',
              `no dead letter ${JSON.stringify(path.id)} of ${dead.topic} on ${dead.deadLetterTopic}`,
            )
          }
          return { status: 200, body: deadLetterView(entry) }
        },
      },
    }),
  ]
}
