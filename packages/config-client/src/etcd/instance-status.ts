/**
 * Which release each running client serves. A client with an etcd source registers itself (a
 * leased entry, like the service registry's, so it disappears with the process) under the
 * prefix's release keys, and updates the entry whenever the release it serves changes.
 */
import { withTimeout } from '@backplane/internal'
import type { Etcd3 } from 'etcd3'
import { timedOut } from '../errors.js'
import type { ReleaseKeys } from './release-store.js'

/** The registry "service" under the release keys whose instances are the running clients. */
export const INSTANCES_SERVICE = 'instances'

/** What a client reports in its entry's metadata. */
export interface ReleaseReport {
  /** The release it serves: the current release, or a gray release it is in. */
  release: string | undefined
  /** True when `release` is a gray release. */
  gray: boolean
  labels: Record<string, string>
}

export interface InstanceStatus extends ReleaseReport {
  readonly id: string
  readonly address: string
  /** When the entry was written (the client started, or changed release). */
  readonly registeredAt: string
}

export async function readInstances(client: Etcd3, keys: ReleaseKeys, timeoutMs: number): Promise<InstanceStatus[]> {
  const prefix = `${keys.instances}`
  const res = await withTimeout(client.getAll().prefix(prefix).exec(), timeoutMs, () =>
    timedOut(`etcd (listing ${prefix})`, timeoutMs),
  )
  const out: InstanceStatus[] = []
  for (const kv of res.kvs) {
    try {
      const entry = JSON.parse(kv.value.toString()) as {
        instance?: unknown
        address?: unknown
        registeredAt?: unknown
        metadata?: Partial<ReleaseReport>
      }
      if (typeof entry.instance !== 'string') continue
      const metadata = entry.metadata ?? {}
      out.push({
        id: entry.instance,
        address: typeof entry.address === 'string' ? entry.address : '',
        registeredAt: typeof entry.registeredAt === 'string' ? entry.registeredAt : '',
        release: typeof metadata.release === 'string' ? metadata.release : undefined,
        gray: metadata.gray === true,
        labels: typeof metadata.labels === 'object' && metadata.labels !== null ? metadata.labels : {},
      })
    } catch {
      // Not an entry of ours: another tool's key under the same prefix is none of status's business.
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id))
}
