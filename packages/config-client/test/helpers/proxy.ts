/**
 * A TCP proxy between the client and etcd, so a test can cut the client's connections (and keep
 * new ones out for a while), or black-hole them, without touching etcd itself.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export class TcpProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  // Forwarding pairs (client → upstream), until black-holed or closed.
  readonly #pairs = new Map<Socket, Socket>()
  #blocked = false
  port = 0

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.#server = createServer((client) => this.#accept(client))
  }

  static async start(target: string): Promise<TcpProxy> {
    const url = new URL(target)
    const proxy = new TcpProxy(url.hostname, Number(url.port))
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    const address = proxy.#server.address()
    proxy.port = typeof address === 'object' && address ? address.port : 0
    return proxy
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Destroys every open connection; with `block`, new ones are refused until unblock(). */
  cut({ block = false } = {}): void {
    this.#blocked = block
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    this.#pairs.clear()
  }

  unblock(): void {
    this.#blocked = false
  }

  /**
   * Black-holes every open connection, as a dead NAT entry or a firewall dropping an idle flow
   * does: the sockets stay open on both ends but nothing is forwarded either way (what arrives is
   * read and dropped, so neither side sees an error, a FIN or even a full buffer). Connections
   * opened later are forwarded normally. Returns how many connections were black-holed.
   */
  blackhole(): number {
    let count = 0
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream)
      upstream.unpipe(client)
      for (const socket of [client, upstream]) {
        socket.on('data', () => {}) // read and drop
        socket.resume()
      }
      this.#pairs.delete(client)
      count++
    }
    return count
  }

  get connections(): number {
    return this.#sockets.size / 2
  }

  #accept(client: Socket): void {
    if (this.#blocked) {
      client.destroy()
      return
    }
    const upstream = connect(this.targetPort, this.targetHost)
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      this.#sockets.delete(client)
      this.#sockets.delete(upstream)
      this.#pairs.delete(client)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    this.#pairs.set(client, upstream)
    client.pipe(upstream)
    upstream.pipe(client)
  }

  async close(): Promise<void> {
    this.cut({ block: true })
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
