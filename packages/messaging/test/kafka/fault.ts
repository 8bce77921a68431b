/**
 * Broker faults for the Kafka tests, on the librdkafka mock cluster of scripts/services.sh.
 *
 * The conformance suite's `restart` means "kill -9 the server and start it again". The mock keeps
 * everything in memory and listens on a new random port each time it starts, so killing it loses
 * every message and committed offset: no client can pass a no-loss test across that, and a real
 * Kafka broker (which replays its log from disk) does not behave that way. Stopping it (SIGSTOP)
 * is no better here: the mock is shared by every test file that `npm test` runs in parallel.
 *
 * So the fault is what a client sees of a crashed and restarted broker, and is given to this
 * test's clients only: a TCP proxy in this process that every kafkajs connection goes through
 * (kafkajs's `socketFactory`: the mock advertises its own address in its metadata, so a proxy
 * given only as the bootstrap address would be bypassed after the first request).
 * - "kill": every connection is dropped and new ones are refused, as by the dead broker's host.
 *   Nothing reaches the broker any more: group sessions expire there while it is "down".
 * - "restart": the proxy listens again on the same ports; the log and the committed offsets are
 *   still there, as on a real broker's disk.
 */
import net from 'node:net'
import type { ISocketFactory } from 'kafkajs'

interface Route {
  target: { host: string; port: number }
  port: number
  server: net.Server | undefined
  sockets: Set<net.Socket>
}

export interface FaultProxy {
  /** Routes every kafkajs connection to a broker through that broker's proxy. */
  readonly socketFactory: ISocketFactory
  /** Starts one proxy per broker `host:port`. */
  listen(brokers: string[]): Promise<void>
  /** Drops every connection and refuses new ones. */
  cut(): Promise<void>
  /** Accepts connections again, on the same ports. */
  restore(): Promise<void>
  close(): Promise<void>
  /** Connections that went straight to a broker, past the proxies (a fault would miss them). */
  readonly bypassed: number
  /** Connections the proxies accepted. */
  readonly accepted: number
}

function bridge(route: Route, client: net.Socket): void {
  const upstream = net.connect(route.target)
  route.sockets.add(client)
  route.sockets.add(upstream)
  const drop = () => {
    client.destroy()
    upstream.destroy()
    route.sockets.delete(client)
    route.sockets.delete(upstream)
  }
  client.on('error', drop).on('close', drop)
  upstream.on('error', drop).on('close', drop)
  client.pipe(upstream)
  upstream.pipe(client)
}

export function createFaultProxy(): FaultProxy {
  const routes = new Map<string, Route>()
  let bypassed = 0
  let accepted = 0

  function serve(route: Route): Promise<void> {
    const server = net.createServer((client) => {
      accepted++
      bridge(route, client)
    })
    route.server = server
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(route.port, '127.0.0.1', () => {
        route.port = (server.address() as net.AddressInfo).port
        resolve()
      })
    })
  }

  function shut(route: Route): Promise<void> {
    const { server } = route
    route.server = undefined
    for (const socket of route.sockets) socket.destroy()
    route.sockets.clear()
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()))
  }

  return {
    socketFactory: ({ host, port, onConnect }) => {
      const route = routes.get(`${host}:${port}`)
      if (!route) bypassed++
      const socket = net.connect(route ? { host: '127.0.0.1', port: route.port } : { host, port }, onConnect)
      socket.setKeepAlive(true, 60_000)
      return socket
    },
    async listen(brokers) {
      for (const broker of brokers) {
        if (routes.has(broker)) continue
        const [host, port] = [
          broker.slice(0, broker.lastIndexOf(':')),
          Number(broker.slice(broker.lastIndexOf(':') + 1)),
        ]
        const route: Route = { target: { host, port }, port: 0, server: undefined, sockets: new Set() }
        routes.set(broker, route)
        await serve(route)
      }
    },
    async cut() {
      await Promise.all([...routes.values()].map(shut))
    },
    async restore() {
      for (const route of routes.values()) if (!route.server) await serve(route)
    },
    async close() {
      await Promise.all([...routes.values()].map(shut))
      routes.clear()
    },
    get bypassed() {
      return bypassed
    },
    get accepted() {
      return accepted
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Takes the brokers away from this process's clients for `downMs`, then brings them back. */
export async function brokerOutage(proxy: FaultProxy, downMs: number): Promise<void> {
  await proxy.cut()
  try {
    await sleep(downMs)
  } finally {
    await proxy.restore()
  }
}
