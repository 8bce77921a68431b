// Where a service finds its infrastructure. Embedded mode: memory:// messaging, SQLite files and a
// config file, all under one data directory. Distributed mode: a Kafka or NATS URL, PostgreSQL and
// etcd. Services read only this, so the same code runs in both modes.
import { mkdirSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createLogger, type Logger } from '@backplane/logging'
import type { Store } from '@backplane/workflow'
import { postgresStore } from '@backplane/workflow/postgres'
import { sqliteStore } from '@backplane/workflow/sqlite'
import { type Db, openPostgres, openSqlite } from './lib/db.js'
import { CONFIG_DIR } from './lib/paths.js'

export interface Runtime {
  readonly mode: 'embedded' | 'distributed'
  /** memory://, kafka://…, nats://…?jetstream=true */
  readonly brokerUrl: string
  /** SQLite files, config snapshots. */
  readonly dataDir: string
  /** One directory per service: logs/<service>/<service>.<time>.<seq>.log */
  readonly logsDir: string
  readonly configFile: string
  /** Distributed mode: every service's tables live in this database (each under its own prefix). */
  readonly postgresUrl?: string | undefined
  readonly etcdEndpoints?: string | undefined
  readonly etcdPrefix: string
  /** Port of each HTTP service (0: any free port). */
  readonly ports: Readonly<Partial<Record<'orders' | 'analytics' | 'notification' | 'bridge', number>>>
  /** Log level of the services' files. */
  readonly logLevel: 'debug' | 'info' | 'warn'
}

export function serviceLogger(runtime: Runtime, service: string): Logger {
  return createLogger({
    service,
    level: runtime.logLevel,
    file: { dir: join(runtime.logsDir, service), size: '10M', maxFiles: 20 },
    // The demo prints its own progress: service logs go to their files only.
    stdout: false,
  })
}

/** Every service's log directory (`logs/<service>/`): what `backplane-logs` and `collectTrace` read. */
export function serviceLogDirs(runtime: Runtime): string[] {
  return readdirSync(runtime.logsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(runtime.logsDir, entry.name))
}

/** The service's own database: a SQLite file, or its tables in the shared PostgreSQL database. */
export function serviceDb(runtime: Runtime, service: string): Db {
  if (runtime.postgresUrl) return openPostgres(runtime.postgresUrl)
  mkdirSync(runtime.dataDir, { recursive: true })
  return openSqlite(join(runtime.dataDir, `${service}.db`))
}

const workflowTablePrefix = (service: string) => `${service}_wf_`
const workflowFile = (runtime: Runtime, service: string) => join(runtime.dataDir, `${service}.workflows.db`)

/** Workflow store of a service's machines. */
export function workflowStore(runtime: Runtime, service: string): Store {
  if (runtime.postgresUrl)
    return postgresStore({ connectionString: runtime.postgresUrl, tablePrefix: workflowTablePrefix(service) })
  mkdirSync(runtime.dataDir, { recursive: true })
  return sqliteStore({ path: workflowFile(runtime, service), synchronous: 'normal' })
}

/**
 * The runtime a service process reads from its environment (`order-flow <service>`):
 * ORDER_FLOW_BROKER_URL, ORDER_FLOW_DATABASE_URL, ETCD_ENDPOINTS, ORDER_FLOW_DATA_DIR,
 * ORDER_FLOW_LOGS_DIR, ORDER_FLOW_CONFIG_FILE, ORDER_FLOW_ETCD_PREFIX, ORDER_FLOW_PORT_<SERVICE>,
 * ORDER_FLOW_LOG_LEVEL.
 */
export function runtimeFromEnv(env: NodeJS.ProcessEnv = process.env): Runtime {
  const dataDir = resolve(env.ORDER_FLOW_DATA_DIR ?? '.order-flow/data')
  const port = (name: string) => {
    const value = env[`ORDER_FLOW_PORT_${name.toUpperCase()}`]
    return value === undefined ? undefined : Number(value)
  }
  const ports: Record<string, number> = {}
  for (const name of ['orders', 'analytics', 'notification', 'bridge']) {
    const value = port(name)
    if (value !== undefined) ports[name] = value
  }
  const postgresUrl = env.ORDER_FLOW_DATABASE_URL
  return {
    mode: postgresUrl ? 'distributed' : 'embedded',
    brokerUrl: env.ORDER_FLOW_BROKER_URL ?? 'memory://',
    dataDir,
    logsDir: resolve(env.ORDER_FLOW_LOGS_DIR ?? join(dataDir, '..', 'logs')),
    configFile: resolve(env.ORDER_FLOW_CONFIG_FILE ?? join(CONFIG_DIR, 'order-flow.yaml')),
    postgresUrl,
    etcdEndpoints: env.ETCD_ENDPOINTS,
    etcdPrefix: env.ORDER_FLOW_ETCD_PREFIX ?? '/order-flow/',
    ports,
    logLevel: (env.ORDER_FLOW_LOG_LEVEL as Runtime['logLevel'] | undefined) ?? 'info',
  }
}

/** The environment that gives a child process this runtime (the inverse of runtimeFromEnv). */
export function runtimeToEnv(runtime: Runtime): Record<string, string> {
  const env: Record<string, string> = {
    ORDER_FLOW_BROKER_URL: runtime.brokerUrl,
    ORDER_FLOW_DATA_DIR: runtime.dataDir,
    ORDER_FLOW_LOGS_DIR: runtime.logsDir,
    ORDER_FLOW_CONFIG_FILE: runtime.configFile,
    ORDER_FLOW_ETCD_PREFIX: runtime.etcdPrefix,
    ORDER_FLOW_LOG_LEVEL: runtime.logLevel,
  }
  if (runtime.postgresUrl) env.ORDER_FLOW_DATABASE_URL = runtime.postgresUrl
  if (runtime.etcdEndpoints) env.ETCD_ENDPOINTS = runtime.etcdEndpoints
  for (const [name, port] of Object.entries(runtime.ports)) env[`ORDER_FLOW_PORT_${name.toUpperCase()}`] = String(port)
  return env
}

/** The same store as `backplane-workflow ui --store` takes it: the SQLite file, or the PostgreSQL URL with its prefix. */
export function workflowStoreUrl(runtime: Runtime, service: string): string {
  if (!runtime.postgresUrl) return workflowFile(runtime, service)
  const url = new URL(runtime.postgresUrl)
  url.searchParams.set('tablePrefix', workflowTablePrefix(service))
  return url.toString()
}
