import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { BridgeError, issueLines } from './errors.js'
import { type BridgeOptions, parseBridgeOptions } from './options.js'

const listenSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65_535).default(8080),
  })
  .prefault({})

export interface BridgeConfig {
  /** Options for createBridge, validated. */
  options: BridgeOptions
  listen: { host: string; port: number }
}

const VARIABLE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/** `${NAME}` and `${NAME:-default}` in every string of the document; `$${` is a literal `${`. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, missing: Set<string>): unknown {
  if (typeof value === 'string') {
    return value.replace(VARIABLE, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${'
      const found = env[name as string]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      missing.add(name as string)
      return ''
    })
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env, missing))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, missing)]))
  }
  return value
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/**
 * Environment variables that override the file (for containers):
 * `BACKPLANE_BRIDGE_HOST`, `BACKPLANE_BRIDGE_PORT`, `BACKPLANE_BRIDGE_BROKER_<NAME>` (a broker
 * URL), `BACKPLANE_BRIDGE_DEFAULT_BROKER`, `BACKPLANE_BRIDGE_STORE` (a file path,
 * `etcd://host:port[,host:port]`, or `none`), `BACKPLANE_BRIDGE_TOPICS` and
 * `BACKPLANE_BRIDGE_WEBHOOKS_ALLOW` (comma-separated), `BACKPLANE_BRIDGE_INSECURE` (`true`).
 */
function applyEnv(doc: Record<string, unknown>, env: NodeJS.ProcessEnv, base: string): void {
  const listen = { ...((doc.listen as Record<string, unknown> | undefined) ?? {}) }
  if (env.BACKPLANE_BRIDGE_HOST) listen.host = env.BACKPLANE_BRIDGE_HOST
  if (env.BACKPLANE_BRIDGE_PORT) listen.port = env.BACKPLANE_BRIDGE_PORT
  doc.listen = listen
  const brokers = { ...((doc.brokers as Record<string, unknown> | undefined) ?? {}) }
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('BACKPLANE_BRIDGE_BROKER_') && value) brokers[name.slice(24).toLowerCase()] = value
  }
  doc.brokers = brokers
  if (env.BACKPLANE_BRIDGE_DEFAULT_BROKER) doc.defaultBroker = env.BACKPLANE_BRIDGE_DEFAULT_BROKER
  if (env.BACKPLANE_BRIDGE_TOPICS) doc.topics = list(env.BACKPLANE_BRIDGE_TOPICS)
  if (env.BACKPLANE_BRIDGE_WEBHOOKS_ALLOW) {
    doc.webhooks = { ...((doc.webhooks as object | undefined) ?? {}), allow: list(env.BACKPLANE_BRIDGE_WEBHOOKS_ALLOW) }
  }
  if (env.BACKPLANE_BRIDGE_INSECURE) doc.insecure = /^(1|true|yes)$/i.test(env.BACKPLANE_BRIDGE_INSECURE)
  const store = env.BACKPLANE_BRIDGE_STORE
  if (store) {
    if (store === 'none') doc.store = false
    else if (/^etcd(\+https?)?:\/\//.test(store)) {
      const secure = store.startsWith('etcd+https')
      const hosts = store.replace(/^etcd(\+https?)?:\/\//, '')
      doc.store = { etcd: { endpoints: list(hosts).map((h) => `${secure ? 'https' : 'http'}://${h}`) } }
    } else doc.store = { file: store }
  }
  // A relative state file is next to the config file, not wherever the process was started.
  if (doc.store === undefined) doc.store = { file: 'backplane-bridge.state.json' }
  const file = typeof doc.store === 'object' && doc.store !== null ? (doc.store as { file?: unknown }).file : undefined
  if (typeof file === 'string' && !isAbsolute(file)) doc.store = { file: resolve(base, file) }
}

/**
 * Reads a bridge config file (YAML, or JSON, which is YAML), fills in `${ENV}` references,
 * applies the `BACKPLANE_BRIDGE_*` environment overrides, and validates it all: a mistake is a
 * BridgeError (BRIDGE_INVALID_CONFIG) naming each wrong field.
 */
export async function loadBridgeConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<BridgeConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new BridgeError(
      500,
      'BRIDGE_INVALID_CONFIG',
      `cannot read the config file ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    )
  }
  let raw: unknown
  try {
    raw = parseYaml(text) ?? {}
  } catch (error) {
    throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `${path} is not valid YAML: ${(error as Error).message}`, {
      cause: error,
    })
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `${path}: expected a mapping of settings at the top level`)
  }
  const missing = new Set<string>()
  const doc = interpolate(raw, env, missing) as Record<string, unknown>
  if (missing.size > 0) {
    throw new BridgeError(
      500,
      'BRIDGE_INVALID_CONFIG',
      `${path} refers to environment variables that are not set: ${[...missing].join(', ')} (use \${NAME:-default} for optional ones)`,
    )
  }
  applyEnv(doc, env, dirname(resolve(path)))
  const { listen: rawListen, ...rest } = doc
  const listen = listenSchema.safeParse(rawListen)
  if (!listen.success) {
    const details = issueLines(listen.error.issues, 'listen').map((l) => (l.startsWith('listen') ? l : `listen.${l}`))
    throw new BridgeError(500, 'BRIDGE_INVALID_CONFIG', `invalid config file ${path}: ${details.join('; ')}`, {
      details,
    })
  }
  for (const [name, value] of Object.entries((rest.brokers as Record<string, unknown>) ?? {})) {
    if (typeof value !== 'string' && (typeof value !== 'object' || value === null || !('url' in value))) {
      throw new BridgeError(
        500,
        'BRIDGE_INVALID_CONFIG',
        `invalid config file ${path}: brokers.${name}: expected a broker URL, or { url, kafka | nats: settings }`,
      )
    }
  }
  parseBridgeOptions(rest, `config file ${path}`)
  return { options: rest as unknown as BridgeOptions, listen: listen.data }
}
