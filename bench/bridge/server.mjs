// One side of the bridge benchmark, in its own process (forked by run.mjs, talking over IPC):
//   bare                  node:http that reads the body and answers 202: the ceiling of this machine
//   bare-json             the same, answering a fixed JSON body of the bridge's size
//   bridge                the HTTP bridge (built package) on the memory broker, with an API key
//   receiver              a webhook receiver that answers 200 and counts
//   webhook-bridge URL N  the bridge with one webhook subscription to URL, concurrency N
import { createServer } from 'node:http'
import { createBroker } from '@backplane/messaging'
import { createBridge } from '@backplane/messaging/bridge'

export const KEY = 'bench-key-0123456789abcdef'
const [mode, target, concurrency] = process.argv.slice(2)

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

async function bridgeServer(bus, extra = {}) {
  const bridge = createBridge({
    brokers: { http: bus },
    auth: { keys: [{ id: 'bench', key: KEY, publish: ['*'], subscribe: ['*'] }] },
    webhooks: { allow: ['127.0.0.1'] },
    store: false,
    ...extra,
  })
  const server = createServer(bridge.handler)
  server.keepAliveTimeout = 60_000
  const port = await listen(server)
  await bridge.ready
  return { bridge, port }
}

if (mode === 'bare') {
  const server = createServer((request, response) => {
    request.on('data', () => {})
    request.on('end', () => {
      response.writeHead(202)
      response.end()
    })
  })
  server.keepAliveTimeout = 60_000
  process.send({ port: await listen(server) })
} else if (mode === 'bare-json') {
  const answer = '{"id":"b6c86aef-35d4-4a30-a035-259caf7b633d"}'
  const server = createServer((request, response) => {
    request.on('data', () => {})
    request.on('end', () => {
      response.writeHead(202, { 'content-type': 'application/json; charset=utf-8' })
      response.end(answer)
    })
  })
  server.keepAliveTimeout = 60_000
  process.send({ port: await listen(server) })
} else if (mode === 'bridge') {
  const { port } = await bridgeServer('memory://bench')
  // For the check before timing: a consumer on the same in-process bus counts what arrives.
  const consumer = await createBroker('memory://bench')
  const counted = new Map()
  process.on('message', async (message) => {
    if (message.count) {
      if (!counted.has(message.count)) {
        counted.set(message.count, new Set())
        await consumer.subscribe(message.count, (m) => void counted.get(message.count).add(m.id), { group: 'check' })
        process.send({ ready: message.count })
      } else process.send({ ids: [...counted.get(message.count)] })
    }
  })
  process.send({ port })
} else if (mode === 'receiver') {
  let count = 0
  let last = 0
  const server = createServer((request, response) => {
    request.on('data', () => {})
    request.on('end', () => {
      count++
      last = performance.timeOrigin + performance.now()
      response.writeHead(200)
      response.end()
    })
  })
  server.keepAliveTimeout = 60_000
  process.on('message', (message) => {
    if (message.count) process.send({ count, last })
  })
  process.send({ port: await listen(server) })
} else if (mode === 'webhook-bridge') {
  const { port } = await bridgeServer('memory://bench-webhooks', {
    webhooks: { allow: ['127.0.0.1'], concurrency: Number(concurrency) },
  })
  const response = await fetch(`http://127.0.0.1:${port}/v1/subscriptions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic: 'bench.webhooks', url: target, secret: 'bench-secret' }),
  })
  if (response.status !== 201) throw new Error(`subscription: ${response.status} ${await response.text()}`)
  process.send({ port })
} else {
  throw new Error(`unknown mode ${mode}`)
}
