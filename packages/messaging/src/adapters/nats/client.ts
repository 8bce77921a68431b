import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { MessagingError } from '@backplane/messaging'

/** The nats.js v3 packages the adapter imports: connections from the first, JetStream from the second. */
export const NATS_CLIENTS = ['@nats-io/transport-node', '@nats-io/jetstream'] as const
export type NatsClient = (typeof NATS_CLIENTS)[number]

const SUPPORTED_NATS = '^3.0.0'

/** @internal Throws MESSAGING_CLIENT_UNSUPPORTED unless `installed` of `name` satisfies ^3.0.0 (unknown passes). */
export function checkNatsVersion(installed: string | undefined, name: NatsClient = '@nats-io/transport-node'): void {
  if (installed === undefined) return
  const match = /^(\d+)\.(\d+)\.(\d+)(-\S+)?$/.exec(installed.trim())
  // Like npm's ^3.0.0: major 3, no prerelease.
  const supported = match !== null && match[1] === '3' && match[4] === undefined
  if (!supported) {
    throw new MessagingError(
      'MESSAGING_CLIENT_UNSUPPORTED',
      `the installed ${name} package is version ${installed}; @backplane/messaging needs ${NATS_CLIENTS.join(' and ')} ${SUPPORTED_NATS}: npm install ${NATS_CLIENTS.map((n) => `${n}@^3`).join(' ')}`,
    )
  }
}

/** @internal Walks up from a file to the nearest package.json named `name` and returns its version. */
export function packageVersionAbove(file: string, name: string, read = readFileSync): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      const json = JSON.parse(read(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (json.name === name && typeof json.version === 'string') return json.version
    } catch {
      // no package.json here (or not JSON): keep walking up
    }
    if (dirname(dir) === dir) return undefined
  }
}

/** @internal The version of the client package `name` this module resolves, or undefined when it cannot tell. */
export function installedNatsVersion(name: NatsClient = '@nats-io/transport-node'): string | undefined {
  try {
    // Resolving the entry and walking up works whatever the package's exports map allows.
    return packageVersionAbove(createRequire(import.meta.url).resolve(name), name)
  } catch {
    return undefined // bundled, or resolved some other way: nothing to check against
  }
}

/** @internal Checks every client package the adapter imports. */
export function checkNatsClients(installed: (name: NatsClient) => string | undefined = installedNatsVersion): void {
  for (const name of NATS_CLIENTS) checkNatsVersion(installed(name), name)
}
