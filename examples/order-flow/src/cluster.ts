// Runs the flow's services as separate processes (distributed mode): each `order-flow <service>`,
// plus the standalone `backplane-bridge`. Used by `npm run demo -- --distributed`, the distributed
// tests and the flow benchmark. Each process can be killed (SIGKILL for crash tests) and restarted.
// Each process runs its own OpenTelemetry SDK (src/telemetry.ts) serving `/metrics` on a port
// chosen here, so that a restarted process answers Prometheus at the same address.
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { EXAMPLE_ROOT } from './lib/paths.js'
import { type Runtime, runtimeToEnv } from './runtime.js'
import { BRIDGE_CONFIG, bridgeEnv } from './services/bridge.js'
import { SERVICE_NAMES } from './services/index.js'

export type ProcessName = (typeof SERVICE_NAMES)[number] | 'bridge'

export interface ServiceProcess {
  readonly name: ProcessName
  readonly pid: number | undefined
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again (same ports, same data) and waits until it serves. */
  restart(): Promise<void>
}

export interface Cluster {
  readonly runtime: Runtime
  readonly urls: {
    readonly orders: string
    readonly analytics: string
    readonly notification: string
    readonly bridge: string
  }
  readonly processes: ReadonlyMap<ProcessName, ServiceProcess>
  /** Each process's Prometheus endpoint (`http://127.0.0.1:port/metrics`). */
  readonly metrics: ReadonlyMap<ProcessName, string>
  /** SIGTERM to every process (they finish what they are doing), then waits for them. */
  stop(): Promise<void>
}

const require = createRequire(import.meta.url)

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

async function waitForHttp(url: string, deadline: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`)
    try {
      if ((await fetch(url)).ok) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer in time`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export async function startCluster(
  base: Omit<Runtime, 'ports'>,
  { webhookSecret = 'order-flow-demo-secret', startTimeoutMs = 90_000 } = {},
): Promise<Cluster> {
  const ports = {
    orders: await freePort(),
    analytics: await freePort(),
    notification: await freePort(),
    bridge: await freePort(),
  }
  const runtime: Runtime = { ...base, ports }
  const url = (port: number) => `http://127.0.0.1:${port}`
  const urls = {
    orders: url(ports.orders),
    analytics: url(ports.analytics),
    notification: url(ports.notification),
    bridge: url(ports.bridge),
  }
  const env = { ...process.env, ...runtimeToEnv(runtime), ORDER_FLOW_WEBHOOK_SECRET: webhookSecret }
  const names = [...SERVICE_NAMES, 'bridge'] as ProcessName[]
  const metricsPorts = new Map<ProcessName, number>()
  for (const name of names) metricsPorts.set(name, await freePort())
  const telemetryEnv = (name: ProcessName) => ({
    OTEL_SERVICE_NAME: name,
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPorts.get(name)),
  })
  const mainJs = join(EXAMPLE_ROOT, 'dist', 'main.js')
  const preloadJs = pathToFileURL(join(EXAMPLE_ROOT, 'dist', 'telemetry-preload.js')).href
  const bridgeJs = join(dirname(require.resolve('@backplane/messaging/package.json')), 'dist', 'bridge-cli.js')

  const launch = (name: ProcessName): ServiceProcess => {
    let child: ChildProcess
    const start = async () => {
      const logDir = join(runtime.logsDir, name)
      mkdirSync(logDir, { recursive: true })
      // stderr of a service is for crashes only (its logs go to its files); the bridge logs there.
      const stderr = createWriteStream(join(logDir, name === 'bridge' ? 'bridge.log' : 'stderr.log'), { flags: 'a' })
      // The bridge is the messaging package's own program: the SDK comes in with --import.
      const args =
        name === 'bridge'
          ? ['--import', preloadJs, bridgeJs, '--config', BRIDGE_CONFIG, '--port', String(ports.bridge)]
          : [mainJs, name]
      child = spawn(process.execPath, args, {
        env: {
          ...env,
          ...(name === 'bridge' ? bridgeEnv(runtime, urls.notification, webhookSecret) : {}),
          ...telemetryEnv(name),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stderr?.pipe(stderr)
      const deadline = Date.now() + startTimeoutMs
      if (name === 'bridge') {
        child.stdout?.resume()
        await waitForHttp(`${urls.bridge}/readyz`, deadline, child)
        return
      }
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${name} did not start within ${startTimeoutMs} ms`)),
          startTimeoutMs,
        )
        lines.on('line', (line) => {
          if (line.startsWith('{"ready"')) {
            clearTimeout(timer)
            resolve()
          }
        })
        child.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`${name} exited with code ${code} while starting: see ${join(logDir, 'stderr.log')}`))
        })
      })
    }
    const handle: ServiceProcess = {
      name,
      get pid() {
        return child?.pid
      },
      stop: (signal = 'SIGTERM') =>
        new Promise<void>((resolve) => {
          if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill(signal)
        }),
      restart: () => start(),
    }
    started.push(start().then(() => handle))
    return handle
  }

  const started: Promise<ServiceProcess>[] = []
  const processes = new Map<ProcessName, ServiceProcess>()
  for (const name of names) processes.set(name, launch(name))
  const stop = async () => {
    await Promise.all([...processes.values()].map((p) => p.stop('SIGTERM')))
  }
  const results = await Promise.allSettled(started)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) {
    await stop()
    throw (failed as PromiseRejectedResult).reason
  }
  const metrics = new Map(names.map((name) => [name, `http://127.0.0.1:${metricsPorts.get(name)}/metrics`]))
  return { runtime, urls, processes, metrics, stop }
}
