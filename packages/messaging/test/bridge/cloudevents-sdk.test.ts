/**
 * Interop with the official CloudEvents SDK (npm `cloudevents`): events it writes in HTTP binary
 * and structured mode are accepted, and the webhook call and the SSE frame read back with the
 * SDK's receiver give the same event, `time` included.
 */
import { randomUUID } from 'node:crypto'
import { CloudEvent, HTTP, type Message } from 'cloudevents'
import { afterAll, describe, expect, it } from 'vitest'
import { receiver, sse, startBridge, unique, until } from './helpers.js'

const KEY = 'sdk-key-0123456789abcdef'
const hook = await receiver()
const bridge = await startBridge(
  {
    brokers: { main: `memory://sdk-${randomUUID().slice(0, 8)}` },
    auth: { keys: [{ id: 'sdk', key: KEY, publish: ['*'], subscribe: ['*'] }] },
    webhooks: { allow: ['127.0.0.1'] },
    store: false,
  },
  KEY,
)
afterAll(async () => {
  await bridge.close()
  await hook.stop()
})

describe.each([
  ['binary', HTTP.binary],
  ['structured', HTTP.structured],
])('the CloudEvents SDK, HTTP %s mode', (_, serialize) => {
  it('is accepted; the webhook call and the SSE frame parse back into the same event', async () => {
    const topic = unique('sdk')
    expect((await bridge.call('/v1/subscriptions', { json: { topic, url: hook.url } })).status).toBe(201)
    const stream = await sse(`${bridge.base}/v1/topics/${topic}/events?access_token=${KEY}`)
    const event = new CloudEvent({
      type: 'com.example.order.created',
      source: '/shop/orders',
      subject: 'order-42',
      // Yesterday: a time the bridge could not have set itself.
      time: new Date(Date.now() - 86_400_000).toISOString(),
      datacontenttype: 'application/json',
      data: { id: 42, lines: [{ sku: 'A-1', qty: 2 }], note: 'Łódź' },
      tenant: 'acme',
      partitionkey: 'customer-7',
    })
    const message = serialize(event) as Message
    const answer = await bridge.call(`/v1/topics/${topic}`, {
      body: message.body as string,
      headers: message.headers as Record<string, string>,
    })
    expect(answer.status).toBe(202)
    expect(answer.body.id).toBe(event.id)

    await until(() => hook.received.some((r) => r.headers['ce-id'] === event.id), 3_000, 'the webhook call')
    await until(() => stream.events.length > 0, 3_000, 'the SSE frame')
    stream.close()
    const call = hook.received.find((r) => r.headers['ce-id'] === event.id)
    const pushed = HTTP.toEvent({
      headers: call?.headers as Record<string, string>,
      body: call?.body.toString('utf8'),
    }) as CloudEvent<unknown>
    expect(pushed.time).toBe(event.time)
    expect(pushed.toJSON()).toEqual(event.toJSON())
    const streamed = HTTP.toEvent({
      headers: { 'content-type': 'application/cloudevents+json' },
      body: stream.events[0]?.data,
    }) as CloudEvent<unknown>
    expect(streamed.time).toBe(event.time)
    expect(streamed.toJSON()).toEqual(event.toJSON())
  })
})
