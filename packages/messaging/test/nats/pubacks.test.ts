import { JetStreamApiError } from '@nats-io/jetstream'
import {
  ClosedConnectionError,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  headers as natsHeaders,
  TimeoutError,
} from '@nats-io/transport-node'
import { describe, expect, it } from 'vitest'
import { pubAckInbox } from '../../src/adapters/nats/pubacks.js'

describe('JetStream PubAcks on one inbox', () => {
  /** A connection that records publishes and lets the test answer them on the inbox subscription. */
  function fakeConnection() {
    const sent: { subject: string; reply: string }[] = []
    let answer: ((error: Error | null, msg: Msg) => void) | undefined
    const nc = {
      subscribe(_subject: string, opts: { callback: (error: Error | null, msg: Msg) => void }) {
        answer = opts.callback
        return { isClosed: () => false }
      },
      publish(subject: string, _data: Uint8Array, opts: { reply: string }) {
        if (subject === 'closed') throw new ClosedConnectionError()
        sent.push({ subject, reply: opts.reply })
      },
    } as unknown as NatsConnection
    const reply = (to: string, body: string, status?: number) => {
      const h = status === undefined ? undefined : natsHeaders(status, 'No Responders')
      answer?.(null, {
        subject: to,
        data: new TextEncoder().encode(body),
        headers: h,
        json: () => JSON.parse(body),
      } as Msg)
    }
    return { nc, sent, reply }
  }
  const message = (subject: string) => ({ subject, data: new Uint8Array(), headers: natsHeaders() })
  // nats.js v3 errors are classes rather than v2's codes: named here as v2 named them.
  const code = (e: unknown) =>
    e instanceof NoRespondersError
      ? '503'
      : e instanceof JetStreamApiError
        ? String(e.status)
        : e instanceof TimeoutError
          ? 'TIMEOUT'
          : e instanceof ClosedConnectionError
            ? 'CONNECTION_CLOSED'
            : String(e)
  const outcome = (p: Promise<void>) => p.then(() => 'stored', code)

  it('settles each message with its own answer: stored, no stream (503), an API error, or a timeout', async () => {
    const { nc, sent, reply } = fakeConnection()
    const group = pubAckInbox(nc).publish(['a', 'b', 'c', 'd', 'closed'].map(message), 50)
    expect(sent.map((s) => s.subject)).toEqual(['a', 'b', 'c', 'd'])
    expect(new Set(sent.map((s) => s.reply)).size).toBe(4)
    reply(sent[1]?.reply as string, '', 503)
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}')
    reply(
      sent[2]?.reply as string,
      '{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}',
    )
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}') // a late duplicate answer is ignored
    const results = await Promise.all(group.results.map(outcome))
    expect(results).toEqual(['stored', '503', '400', 'TIMEOUT', 'CONNECTION_CLOSED'])
    const apiError = await group.results[2]?.catch((e: JetStreamApiError) => e)
    expect((apiError as JetStreamApiError).apiError()).toMatchObject({ err_code: 10060 })
  })

  it('forgets what it no longer waits for once cancelled', async () => {
    const { nc, sent, reply } = fakeConnection()
    const group = pubAckInbox(nc).publish([message('a')], 20)
    let settled = false
    void group.results[0]?.finally(() => {
      settled = true
    })
    group.cancel()
    reply(sent[0]?.reply as string, '{"stream":"S","seq":1}')
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(settled).toBe(false)
  })
})
