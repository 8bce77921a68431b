// Sets the whole flow up in either mode and gives back where to reach it: what the demo, the
// end-to-end tests and the flow benchmark share.
import { randomUUID } from 'node:crypto'
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { installTraceContext } from '@backplane/logging/trace-context'
import { parseDocument } from 'yaml'
import { type Cluster, startCluster } from './cluster.js'
import { type Embedded, startEmbedded } from './embedded.js'
import { clearEtcdConfig, createDatabase, ensureServers, putEtcdConfig, type Servers } from './infra.js'
import { CONFIG_DIR } from './lib/paths.js'
import { type PrometheusTargets, registerTargets } from './prometheus.js'
import type { Runtime } from './runtime.js'

export type BrokerKind = 'nats' | 'kafka'

export interface FlowOptions {
  readonly mode: 'embedded' | 'distributed'
  /** Distributed mode's broker. Default nats (JetStream). */
  readonly broker?: BrokerKind | undefined
  /** Data, logs and the config file of this run; emptied first. */
  readonly dir: string
  /** Distributed mode: the servers (default: started by scripts/services.sh). */
  readonly servers?: Servers | undefined
  /** Distributed mode: the PostgreSQL database. Default order_flow_<random>. */
  readonly database?: string | undefined
  /**
   * Distributed mode: drop the database first (default true). Keep it when the broker is shared
   * with earlier runs: their messages then still find their orders.
   */
  readonly freshDatabase?: boolean | undefined
  readonly logLevel?: Runtime['logLevel'] | undefined
  /** Configuration values to start with (`{ 'payment.failureRate': 0 }`), where the mode keeps them. */
  readonly settings?: Readonly<Record<string, unknown>> | undefined
}

export interface FlowEnvironment {
  readonly mode: 'embedded' | 'distributed'
  readonly runtime: Runtime
  readonly urls: {
    readonly orders: string
    readonly analytics: string
    readonly notification: string
    readonly bridge: string
  }
  /** Distributed mode: the service processes (to kill and restart them). */
  readonly cluster?: Cluster | undefined
  /** Distributed mode with Prometheus running: the processes it scrapes, labelled with this run. */
  readonly prometheus?: PrometheusTargets | undefined
  /** Changes a configuration value where this mode keeps it (the YAML file, or etcd); returns where. */
  setConfig(path: string, value: unknown): Promise<string>
  /** Stops every service; the data and logs stay in `dir`. */
  close(): Promise<void>
}

function setYaml(file: string, path: string, value: unknown): void {
  const doc = parseDocument(readFileSync(file, 'utf8'))
  doc.setIn(path.split('.'), value)
  writeFileSync(file, doc.toString())
}

export async function startFlow(options: FlowOptions): Promise<FlowEnvironment> {
  // The app's choice, made once per process: W3C trace context carried in async context, so log
  // lines carry trace ids without an OpenTelemetry SDK (an SDK registered first wins).
  installTraceContext()
  rmSync(options.dir, { recursive: true, force: true })
  mkdirSync(options.dir, { recursive: true })
  const configFile = join(options.dir, 'order-flow.yaml')
  copyFileSync(join(CONFIG_DIR, 'order-flow.yaml'), configFile)
  const base = {
    dataDir: join(options.dir, 'data'),
    logsDir: join(options.dir, 'logs'),
    configFile,
    logLevel: options.logLevel ?? 'info',
  } as const

  const settings = Object.entries(options.settings ?? {})
  if (options.mode === 'embedded') {
    for (const [path, value] of settings) setYaml(configFile, path, value)
    const runtime: Runtime = {
      ...base,
      mode: 'embedded',
      brokerUrl: 'memory://',
      etcdPrefix: '/order-flow/',
      ports: {},
    }
    const embedded: Embedded = await startEmbedded(runtime)
    return {
      mode: 'embedded',
      runtime,
      urls: embedded.urls,
      setConfig: async (path, value) => {
        setYaml(configFile, path, value)
        return configFile
      },
      close: () => embedded.close(),
    }
  }

  const brokerKind = options.broker ?? 'nats'
  const servers = options.servers ?? ensureServers(['etcd', 'postgres', brokerKind])
  const database = options.database ?? `order_flow_${randomUUID().slice(0, 8)}`
  const postgresUrl = await createDatabase(servers.databaseUrl, database, { fresh: options.freshDatabase ?? true })
  const etcdPrefix = `/order-flow/${database}/`
  await clearEtcdConfig(servers.etcdEndpoints, etcdPrefix)
  for (const [path, value] of settings) await putEtcdConfig(servers.etcdEndpoints, etcdPrefix, path, value)
  const brokerUrl =
    // ackWait: a message taken by a process that then died is redelivered after 10 s (default 30 s).
    brokerKind === 'nats'
      ? `${servers.natsUrl}?jetstream=true&ackWait=10s`
      : `kafka://${servers.kafkaBrokers as string}?maxWaitTime=100`
  const cluster = await startCluster({
    ...base,
    mode: 'distributed',
    brokerUrl,
    postgresUrl,
    etcdEndpoints: servers.etcdEndpoints,
    etcdPrefix,
  })
  const prometheus =
    servers.prometheusUrl && servers.prometheusTargetsDir
      ? registerTargets(
          servers.prometheusUrl,
          servers.prometheusTargetsDir,
          `${database}-${Date.now().toString(36)}`,
          cluster.metrics,
        )
      : undefined
  return {
    mode: 'distributed',
    runtime: cluster.runtime,
    urls: cluster.urls,
    cluster,
    prometheus,
    setConfig: async (path, value) => {
      await putEtcdConfig(servers.etcdEndpoints, etcdPrefix, path, value)
      return `etcd ${etcdPrefix}${path.replaceAll('.', '/')}`
    },
    close: async () => {
      // Unlisted first: Prometheus marks the series stale instead of recording failed scrapes.
      prometheus?.remove()
      await cluster.stop()
    },
  }
}
