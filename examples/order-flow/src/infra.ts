// Distributed mode's servers: PostgreSQL, etcd and the broker come from scripts/services.sh at the
// repository root (started here when they are not running), or from the environment when the
// example runs elsewhere: ORDER_FLOW_DATABASE_URL, ETCD_ENDPOINTS and ORDER_FLOW_BROKER_URL.
// Prometheus is optional: when services.sh runs it (`up prometheus`), the flow registers its targets.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type PgTypes from 'pg'
import { EXAMPLE_ROOT } from './lib/paths.js'

const require = createRequire(import.meta.url)

export interface Servers {
  readonly databaseUrl: string
  readonly etcdEndpoints: string
  readonly natsUrl?: string | undefined
  readonly kafkaBrokers?: string | undefined
  /** Prometheus's HTTP API, when it runs (PROMETHEUS_URL). */
  readonly prometheusUrl?: string | undefined
  /** Where file_sd target files go (PROMETHEUS_TARGETS_DIR). */
  readonly prometheusTargetsDir?: string | undefined
}

export type ServerName = 'etcd' | 'postgres' | 'nats' | 'kafka' | 'prometheus'

const SERVICES_SCRIPT = join(EXAMPLE_ROOT, '..', '..', 'scripts', 'services.sh')

/**
 * Runs `scripts/services.sh up` for `names` (a no-op for servers already running) and returns the
 * addresses its `env` prints. `env` may move the servers (BACKPLANE_SERVICES_DIR, ports).
 */
export function servicesUp(names: readonly ServerName[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  execFileSync('bash', [SERVICES_SCRIPT, 'up', ...names], { stdio: ['ignore', 'ignore', 'inherit'], env })
  const vars: Record<string, string> = {}
  for (const line of execFileSync('bash', [SERVICES_SCRIPT, 'env'], { encoding: 'utf8', env }).split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return vars
}

export function servicesDown(names: readonly ServerName[], env: NodeJS.ProcessEnv = process.env): void {
  execFileSync('bash', [SERVICES_SCRIPT, 'down', ...names], { stdio: 'ignore', env })
}

/** Starts (if needed) and returns the addresses of the servers scripts/services.sh runs. */
export function ensureServers(names: readonly ServerName[], env = process.env): Servers {
  const vars: Record<string, string | undefined> = {
    ...env,
    ...(existsSync(SERVICES_SCRIPT) ? servicesUp(names, env) : {}),
  }
  const need = (name: string) => {
    const value = vars[name]
    if (!value) throw new Error(`${name} is not set and scripts/services.sh is not there to start the server`)
    return value
  }
  return {
    databaseUrl: need('DATABASE_URL'),
    etcdEndpoints: need('ETCD_ENDPOINTS'),
    natsUrl: names.includes('nats') ? need('NATS_URL') : undefined,
    kafkaBrokers: names.includes('kafka') ? need('KAFKA_BROKERS') : undefined,
    prometheusUrl: names.includes('prometheus') ? need('PROMETHEUS_URL') : vars.PROMETHEUS_URL,
    prometheusTargetsDir: names.includes('prometheus') ? need('PROMETHEUS_TARGETS_DIR') : vars.PROMETHEUS_TARGETS_DIR,
  }
}

async function withPg<T>(url: string, fn: (client: PgTypes.Client) => Promise<T>): Promise<T> {
  const { Client } = require('pg') as typeof PgTypes
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates database `name` on the server of `url` (dropping it first with `fresh`); returns its URL. */
export async function createDatabase(url: string, name: string, { fresh = false } = {}): Promise<string> {
  await withPg(url, async (client) => {
    if (fresh) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`)
  })
  const target = new URL(url)
  target.pathname = `/${name}`
  return target.toString()
}

export async function dropDatabase(url: string, name: string): Promise<void> {
  await withPg(url, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
}

async function withEtcd<T>(endpoints: string, fn: (client: import('etcd3').Etcd3) => Promise<T>): Promise<T> {
  const { Etcd3 } = await import('etcd3')
  const client = new Etcd3({ hosts: endpoints.split(',') })
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}

/** Writes one configuration value into etcd under `prefix` (`payment.failureRate` → `<prefix>payment/failureRate`). */
export async function putEtcdConfig(endpoints: string, prefix: string, path: string, value: unknown): Promise<void> {
  await withEtcd(endpoints, async (client) => {
    await client.put(`${prefix}${path.replaceAll('.', '/')}`).value(JSON.stringify(value))
  })
}

export async function clearEtcdConfig(endpoints: string, prefix: string): Promise<void> {
  await withEtcd(endpoints, async (client) => {
    await client.delete().prefix(prefix)
  })
}
