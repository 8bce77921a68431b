/** Reading gray releases: the running one (`live/gray`, which clients watch) and the records of all. */
import { withTimeout } from '@backplane/internal'
import type { Etcd3 } from 'etcd3'
import { timedOut } from '../errors.js'
import { type GrayRelease, grayRecordSchema } from './gray.js'
import { listRecords, parseStored, type ReleaseKeys, seqOf } from './release-store.js'

/** The gray release running, with the mod revision of its `live/gray` key (the guard of what changes it). */
export interface ActiveGray {
  readonly record: GrayRelease
  readonly modRevision: string
}

export function parseGray(key: string, text: string): GrayRelease {
  return parseStored(grayRecordSchema, key, text)
}

export async function readActiveGray(
  client: Etcd3,
  keys: ReleaseKeys,
  timeoutMs: number,
): Promise<ActiveGray | undefined> {
  const res = await withTimeout(client.kv.range({ key: Buffer.from(keys.gray) }), timeoutMs, () =>
    timedOut(`etcd (reading ${keys.gray})`, timeoutMs),
  )
  const kv = res.kvs[0]
  return kv ? { record: parseGray(keys.gray, kv.value.toString()), modRevision: kv.mod_revision } : undefined
}

export async function readGray(
  client: Etcd3,
  keys: ReleaseKeys,
  id: string,
  timeoutMs: number,
): Promise<GrayRelease | undefined> {
  const seq = seqOf(id, 'g')
  if (seq === undefined) return undefined
  const key = keys.grayRecord(seq)
  const text = await withTimeout(client.get(key).string(), timeoutMs, () =>
    timedOut(`etcd (reading ${key})`, timeoutMs),
  )
  return text === null ? undefined : parseGray(key, text)
}

/** The newest `limit` gray releases, newest first. */
export function listGrays(client: Etcd3, keys: ReleaseKeys, limit: number, timeoutMs: number): Promise<GrayRelease[]> {
  return listRecords(client, keys.grayRecords, limit, timeoutMs, parseGray)
}
