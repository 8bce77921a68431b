// Distributed mode's servers: PostgreSQL, etcd and the broker come from scripts/services.sh at the
// repository root (started here when they are not running), or from the environment when the
// example runs elsewhere: ORDER_FLOW_DATABASE_URL, ETCD_ENDPOINTS and ORDER_FLOW_BROKER_URL.
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
}

/** Starts (if needed) and returns the addresses of the servers scripts/services.sh runs. */
export function ensureServers(names: readonly ('etcd' | 'postgres' | 'nats' | 'kafka')[], env = process.env): Servers {
  const script = join(EXAMPLE_ROOT, '..', '..', 'scripts', 'services.sh')
  const vars: Record<string, string | undefined> = { ...env }
  if (existsSync(script)) {
    execFileSync('bash', [script, 'up', ...names], { stdio: ['ignore', 'ignore', 'inherit'], env })
    const text = execFileSync('bash', [script, 'env'], { encoding: 'utf8', env })
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=')
      if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1)
    }
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
  }
}

/** Creates database `name` on the server of `url` (dropping it first with `fresh`); returns its URL. */
export async function createDatabase(url: string, name: string, { fresh = false } = {}): Promise<string> {
  const { Client } = require('pg') as typeof PgTypes
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    if (fresh) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`)
  } finally {
    await client.end()
  }
  const target = new URL(url)
  target.pathname = `/${name}`
  return target.toString()
}

export async function dropDatabase(url: string, name: string): Promise<void> {
  const { Client } = require('pg') as typeof PgTypes
  const client = new Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  } finally {
    await client.end()
  }
}

/** Writes one configuration value into etcd under `prefix` (`payment.failureRate` → `<prefix>payment/failureRate`). */
export async function putEtcdConfig(endpoints: string, prefix: string, path: string, value: unknown): Promise<void> {
  const { Etcd3 } = await import('etcd3')
  const client = new Etcd3({ hosts: endpoints.split(',') })
  try {
    await client.put(`${prefix}${path.replaceAll('.', '/')}`).value(JSON.stringify(value))
  } finally {
    client.close()
  }
}

export async function clearEtcdConfig(endpoints: string, prefix: string): Promise<void> {
  const { Etcd3 } = await import('etcd3')
  const client = new Etcd3({ hosts: endpoints.split(',') })
  try {
    await client.delete().prefix(prefix)
  } finally {
    client.close()
  }
}
