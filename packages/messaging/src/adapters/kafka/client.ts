import { createRequire } from 'node:module'
import { MessagingError } from '@backplane/messaging'

const SUPPORTED_KAFKAJS = '^2.2.0'

/** @internal Throws MESSAGING_CLIENT_UNSUPPORTED unless `version` is in SUPPORTED_KAFKAJS. */
export function checkKafkajsVersion(version: string | undefined): void {
  const match = /^(\d+)\.(\d+)\.(\d+)/.exec(version ?? '')
  if (match && Number(match[1]) === 2 && Number(match[2]) >= 2) return
  throw new MessagingError(
    'MESSAGING_CLIENT_UNSUPPORTED',
    `kafkajs ${version ?? '(unknown version)'} is installed, but @backplane/messaging/kafka supports kafkajs ${SUPPORTED_KAFKAJS}: npm install kafkajs@${SUPPORTED_KAFKAJS}`,
  )
}

export function installedKafkajsVersion(): string | undefined {
  // Resolved from this file, as the adapter's kafkajs imports are (tsup's `shims` give the CJS
  // build a file URL for import.meta.url).
  return (createRequire(import.meta.url)('kafkajs/package.json') as { version?: string }).version
}
