import { MessagingError } from '@backplane/messaging'
import { RENAMED_KAFKA_OPTIONS, renameKafkaOptions } from './options.js'

// Durations: ms or strings like "30s". The old names (maxWaitTimeInMs, ...) still work, with a warning.
const DURATION_PARAMS = new Set([
  'connectionTimeout',
  'requestTimeout',
  'sessionTimeout',
  'heartbeatInterval',
  'maxWaitTime',
  'subscribeTimeout',
  'commitInterval',
])
const OLD_DURATION_PARAMS = new Set<string>(RENAMED_KAFKA_OPTIONS.map((r) => r.from))
const SASL_PARAMS = new Set(['plain', 'scram-sha-256', 'scram-sha-512'])
const URL_PARAMS = ['clientId', 'brokers', 'ssl', 'sasl', ...DURATION_PARAMS]

function withDefaultPort(address: string): string {
  return /:\d+$/.test(address) ? address : `${address}:9092`
}

function splitList(list: string): string[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function invalidUrl(url: URL, expected: string): MessagingError {
  const shown = url.password ? url.href.replace(`:${url.password}@`, ':***@') : url.href
  return new MessagingError('MESSAGING_INVALID_URL', `invalid kafka URL ${shown}: ${expected}`)
}

/** @internal The options a `kafka://` URL says; validated later, with the options given in code. */
export function optionsFromUrl(url: URL): Record<string, unknown> {
  const hosts = splitList(decodeURIComponent(url.hostname))
  // `kafka://h1,h2:9092`: the URL parser gives the port to the whole list.
  const port = url.port
  const brokers = hosts.map((h) => (port && !/:\d+$/.test(h) ? `${h}:${port}` : withDefaultPort(h)))
  const out: Record<string, unknown> = { brokers }
  let mechanism: string | undefined
  for (const [name, value] of url.searchParams) {
    if (DURATION_PARAMS.has(name) || OLD_DURATION_PARAMS.has(name)) {
      out[name] = /^\d+$/.test(value) ? Number(value) : value
    } else if (name === 'clientId') {
      out.clientId = value
    } else if (name === 'brokers') {
      brokers.push(...splitList(value).map(withDefaultPort))
    } else if (name === 'ssl') {
      if (value !== 'true' && value !== 'false') throw invalidUrl(url, `ssl=${value}: expected ssl=true or ssl=false`)
      out.ssl = value === 'true'
    } else if (name === 'sasl') {
      if (!SASL_PARAMS.has(value))
        throw invalidUrl(url, `sasl=${value}: expected one of ${[...SASL_PARAMS].join(', ')}`)
      mechanism = value
    } else {
      throw invalidUrl(url, `unknown query parameter "${name}": expected ${URL_PARAMS.join(', ')}`)
    }
  }
  if (url.username) {
    out.sasl = {
      mechanism: mechanism ?? 'plain',
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    }
  } else if (mechanism) {
    throw invalidUrl(url, `sasl=${mechanism} needs a user and password: kafka://user:password@host:9092`)
  }
  return renameKafkaOptions(out, 'kafka URL')
}
