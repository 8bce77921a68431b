import { MessagingError } from '@backplane/messaging'

type ParamKind = 'string' | 'boolean' | 'integer' | 'list'
const URL_PARAMS: Record<string, ParamKind> = {
  jetstream: 'boolean',
  servers: 'list',
  name: 'string',
  tls: 'boolean',
  maxReconnectAttempts: 'integer',
  reconnectTimeWait: 'string',
  connectTimeout: 'string',
  timeout: 'string',
  stream: 'string',
  streamPrefix: 'string',
  storage: 'string',
  maxAge: 'string',
  duplicateWindow: 'string',
  replicas: 'integer',
  ackWait: 'string',
  inactiveThreshold: 'string',
  brokerDedupe: 'boolean',
}

function paramValue(kind: ParamKind, raw: string): unknown {
  switch (kind) {
    case 'boolean':
      // Anything else is left as a string for validation to report.
      return raw === 'true' || raw === '1' || raw === '' ? true : raw === 'false' || raw === '0' ? false : raw
    case 'integer':
      return /^-?\d+$/.test(raw) ? Number(raw) : raw
    case 'list':
      return raw.split(',').filter((s) => s.length > 0)
    default:
      return raw
  }
}

/** @internal Reads the options a `nats://` URL carries (see index.ts). */
export function natsOptionsFromUrl(url: URL): Record<string, unknown> {
  if (url.protocol !== 'nats:') {
    throw new MessagingError('MESSAGING_INVALID_URL', `expected a nats:// URL, got ${JSON.stringify(url.protocol)}`)
  }
  if (url.pathname !== '' && url.pathname !== '/') {
    throw new MessagingError(
      'MESSAGING_INVALID_URL',
      `unexpected path ${JSON.stringify(url.pathname)} in the NATS URL: expected nats://host:4222[?param=value]`,
    )
  }
  const options: Record<string, unknown> = {
    servers: decodeURIComponent(url.host)
      .split(',')
      .filter((s) => s.length > 0),
  }
  const user = decodeURIComponent(url.username)
  const pass = decodeURIComponent(url.password)
  // nats://token@host is NATS's own convention for token authentication.
  if (user && pass) Object.assign(options, { user, pass })
  else if (user) options.token = user
  const unknown: string[] = []
  for (const [key, raw] of url.searchParams) {
    const kind = URL_PARAMS[key]
    if (kind === undefined) unknown.push(key)
    else if (key === 'servers')
      options.servers = [...(options.servers as string[]), ...(paramValue(kind, raw) as string[])]
    else options[key] = paramValue(kind, raw)
  }
  if (unknown.length > 0) {
    throw new MessagingError(
      'MESSAGING_INVALID_OPTIONS',
      `unknown NATS URL parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}: expected ${Object.keys(URL_PARAMS).join(', ')}`,
      { details: unknown.map((k) => `${k}: unknown URL parameter`) },
    )
  }
  return options
}
