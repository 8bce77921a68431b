/**
 * What `backplane-config` reads and checks, as functions: the tree under a prefix, the layers under
 * etcd, a validation, the transaction guard of a publish, a file compared with etcd.
 */
import { withTimeout } from '@backplane/internal'
import type { Etcd3, ICompare } from 'etcd3'
import type { z } from 'zod'
import { timedOut } from '../errors.js'
import { silentLogger } from '../logger.js'
import { fillObjects, isSecretPath, REDACTED, redact, schemaAt } from '../schema.js'
import type { KeyRing } from '../sealing/key-ring.js'
import { SealedTrees } from '../sealing/sealed-trees.js'
import type { ConfigSource } from '../sources/types.js'
import { type ConfigTree, diffTrees, getAt, mergeTrees, type RawChange } from '../tree.js'
import { buildTree, decodeValue, keyToPath, pathToKey } from './keys.js'

export interface PrefixState {
  kvs: Map<string, { value: string; modRevision: string }>
  revision: string
}

export async function readPrefix(client: Etcd3, prefix: string, timeoutMs: number): Promise<PrefixState> {
  const res = await withTimeout(
    client
      .getAll()
      .prefix(prefix)
      .options({ deadline: Date.now() + timeoutMs })
      .exec(),
    timeoutMs,
    () => timedOut(`etcd (listing ${prefix})`, timeoutMs),
  )
  const kvs = new Map<string, { value: string; modRevision: string }>()
  for (const kv of res.kvs) kvs.set(kv.key.toString(), { value: kv.value.toString(), modRevision: kv.mod_revision })
  return { kvs, revision: res.header.revision }
}

/** The tree under the prefix; with a key ring, sealed values opened (else their envelope text). */
export function treeOf(state: PrefixState, prefix: string, schema: unknown, ring?: KeyRing): ConfigTree {
  const kvs = new Map([...state.kvs].map(([k, v]) => [k, v.value]))
  return ring ? new SealedTrees(prefix, ring, () => silentLogger).build(kvs, schema) : buildTree(kvs, prefix, schema)
}

/** Loads sources once (no watching), for the lower layers of a validation. */
export async function loadLayers(sources: readonly ConfigSource[], schema: z.ZodType): Promise<ConfigTree[]> {
  const context = {
    schema,
    logger: silentLogger,
    signal: new AbortController().signal,
    reportError: () => {},
    setAvailable: () => {},
  }
  return Promise.all(sources.map(async (s) => s.load(context)))
}

/** Validates `layers` (lowest first) merged, as createConfig would; returns the issues as lines. */
export function validateLayers(schema: z.ZodType, layers: readonly ConfigTree[]): string[] {
  const result = schema.safeParse(fillObjects(schema, mergeTrees(layers)))
  if (result.success) return []
  return result.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
}

/**
 * Compares that hold only if the prefix is as read: no key in it modified or created since (one
 * range compare), and none deleted (one compare per key read, while within etcd's default limit of
 * 128 operations per transaction).
 */
export function unchangedSince(prefix: string, state: PrefixState): ICompare[] {
  const compares: ICompare[] = [
    {
      key: Buffer.from(prefix),
      range_end: prefixEnd(Buffer.from(prefix)),
      target: 'Mod',
      result: 'Less',
      mod_revision: String(Number(state.revision) + 1),
    },
  ]
  if (state.kvs.size <= 100)
    for (const [key, { modRevision }] of state.kvs)
      compares.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision })
  return compares
}

/** The end of the key range of everything starting with `prefix` (etcd's convention). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

export interface FileDiff {
  /** Only in the file, only in etcd, or different. */
  kind: 'file-only' | 'etcd-only' | 'different'
  path: string
  file: unknown
  etcd: unknown
}

/** Leaf differences between a file's tree and etcd's tree (secret values redacted with a schema). */
export function diffFileAndEtcd(
  fileTree: ConfigTree,
  etcdTree: ConfigTree,
  schema: unknown,
  showSecrets: boolean,
): FileDiff[] {
  return diffTrees(fileTree, etcdTree).map((c: RawChange) => {
    const shown = (v: unknown) =>
      v === undefined
        ? undefined
        : !showSecrets && isSecretPath(schema, c.path)
          ? REDACTED
          : showSecrets
            ? v
            : redact(schemaAt(schema, c.path), v)
    return {
      kind: c.prev === undefined ? 'etcd-only' : c.next === undefined ? 'file-only' : 'different',
      path: c.path.join('.'),
      file: shown(c.prev),
      etcd: shown(c.next),
    }
  })
}

export { decodeValue, getAt, keyToPath, pathToKey }
