/** `backplane-workflow ui`: the inspector on a node:http server of its own, until a signal ends it. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { AnyMachine } from '../machine.js'
import { createReader } from '../reader.js'
import type { Store } from '../store.js'
import { createInspector } from './inspector.js'

export interface ServeOptions {
  readonly store: Store
  readonly machines: readonly AnyMachine[]
  readonly port: number
  readonly host: string
  /** Stops the server; without it SIGINT or SIGTERM does. */
  readonly signal?: AbortSignal | undefined
  readonly print: (line: string) => Promise<void>
}

/** Serves the inspector, prints its URL, and resolves once stopped (everything closed). */
export async function serveInspector(options: ServeOptions): Promise<void> {
  const reader = createReader({ store: options.store, machines: options.machines })
  const inspector = createInspector({ reader })
  const server = createServer((req, res) => inspector(req, res))
  try {
    // Opened before the URL is printed: a store that cannot be reached fails here, not in the page.
    await reader.open()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port, options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { address, port } = server.address() as AddressInfo
    const host = address.includes(':') ? `[${address}]` : address
    await options.print(
      `Workflow inspector on http://${host}:${port}/ (read-only, no authentication: keep it on a trusted network)\n`,
    )
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      if (options.signal) {
        if (options.signal.aborted) stop()
        else options.signal.addEventListener('abort', stop, { once: true })
      } else {
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      }
    })
  } finally {
    await inspector.close()
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    await reader.close()
  }
}
