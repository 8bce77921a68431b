/** Two bridges sharing one etcd store: what one adds or removes, the other starts or stops; a restart reloads it. */
import { randomUUID } from 'node:crypto'
import { Etcd3 } from 'etcd3'
import { afterAll, expect, it } from 'vitest'
import { requireEnv } from '../env.js'
import { type RunningBridge, receiver, startBridge, unique, until } from './helpers.js'

const endpoints = requireEnv('ETCD_ENDPOINTS')
const prefix = `/test/bridge/${randomUUID().slice(0, 8)}/`
const KEY = 'etcd-key-0123456789abcdef'
const bus = `memory://etcd-${randomUUID().slice(0, 8)}`
const open: RunningBridge[] = []
const start = async () => {
  const b = await startBridge(
    {
      brokers: { main: bus },
      auth: { keys: [{ id: 'k', key: KEY, publish: ['*'], subscribe: ['*'] }] },
      webhooks: { allow: ['127.0.0.1'] },
      store: { etcd: { endpoints, prefix } },
    },
    KEY,
  )
  open.push(b)
  return b
}
afterAll(async () => {
  await Promise.allSettled(open.map((b) => b.close()))
  const client = new Etcd3({ hosts: endpoints })
  await client.delete().prefix(prefix).exec()
  client.close()
})

it('shares subscriptions and routes between bridges through etcd', async () => {
  const [a, b] = await Promise.all([start(), start()])
  const r = await receiver()
  const topic = unique('etcd')
  const created = await a.call('/v1/subscriptions', { json: { id: 'shared', topic, url: r.url } })
  expect(created.status).toBe(201)
  const route = await a.call('/v1/routes', {
    json: { id: 'shared-route', source: topic, destinations: [`${topic}.copy`] },
  })
  expect(route.status).toBe(201)
  await until(
    async () =>
      (await b.call('/v1/subscriptions/shared')).status === 200 &&
      (await b.call('/v1/routes/shared-route')).status === 200,
    5_000,
    'the other bridge to start them',
  )
  // Both bridges run it in one group: each message is delivered once.
  for (let i = 0; i < 10; i++) await b.call(`/v1/topics/${topic}`, { json: { i } })
  await until(() => r.received.length === 10, 5_000, 'ten deliveries')
  expect(new Set(r.received.map((c) => String(c.body))).size).toBe(10)

  await b.call('/v1/subscriptions/shared', { method: 'DELETE' })
  await until(
    async () => (await a.call('/v1/subscriptions/shared')).status === 404,
    5_000,
    'the removal to reach the other bridge',
  )

  await a.close()
  const c = await start()
  expect((await c.call('/v1/routes')).body.routes).toEqual([
    expect.objectContaining({ id: 'shared-route', origin: 'api' }),
  ])
  expect((await c.call('/v1/subscriptions')).body.subscriptions).toEqual([])
  await r.stop()
})
