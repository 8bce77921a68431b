import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { MessagingError } from '@backplane/messaging'

const SUPPORTED_NATS = '^2.19.0'

/** @internal Throws MESSAGING_CLIENT_UNSUPPORTED unless `installed` satisfies ^2.19.0 (unknown passes). */
export function checkNatsVersion(installed: string | undefined): void {
  if (installed === undefined) return
  const match = /^(\d+)\.(\d+)\.(\d+)(-\S+)?$/.exec(installed.trim())
  // Like npm's ^2.19.0: same major, at least 2.19.0, no prerelease.
  const supported = match !== null && match[1] === '2' && Number(match[2]) >= 19 && match[4] === undefined
  if (!supported) {
    throw new MessagingError(
      'MESSAGING_CLIENT_UNSUPPORTED',
      `the installed nats package is version ${installed}; @backplane/messaging needs nats ${SUPPORTED_NATS}: npm install nats@^2.29`,
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

/** @internal The version of the `nats` package this module resolves, or undefined when it cannot tell. */
export function installedNatsVersion(): string | undefined {
  try {
    // Resolving the entry and walking up works whatever the package's exports map allows.
    return packageVersionAbove(createRequire(import.meta.url).resolve('nats'), 'nats')
  } catch {
    return undefined // bundled, or resolved some other way: nothing to check against
  }
}
