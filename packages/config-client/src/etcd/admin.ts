/**
 * What `backplane-config` does, as functions: read the tree under a prefix, write or delete a value
 * after validating the result against the app's schema, compare a file with etcd.
 */
import { withTimeout } from '@backplane/internal'
import type { Etcd3, ICompare } from 'etcd3'
import type { z } from 'zod'
import { ConfigError, timedOut } from '../errors.js'
import { silentLogger } from '../logger.js'
import { fillObjects, isSecretPath, REDACTED, redact, schemaAt } from '../schema.js'
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

export function treeOf(state: PrefixState, prefix: string, schema: unknown): ConfigTree {
  return buildTree(new Map([...state.kvs].map(([k, v]) => [k, v.value])), prefix, schema)
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

export interface WriteOptions {
  client: Etcd3
  prefix: string
  timeoutMs: number
  /** Validate against this schema (with `layers` under etcd); skip validation when undefined. */
  schema?: z.ZodType | undefined
  layers?: readonly ConfigTree[]
}

/**
 * Sets `path` to the text `value` (stored as given, like `etcdctl put`), or deletes the key at
 * `path` and every key under it when `value` is undefined. With a schema, the configuration that
 * would result is validated first and nothing is written if it is invalid. The write is a
 * transaction on the revision of what was read, so a concurrent writer makes it retry with fresh data.
 */
export async function writeValidated(
  options: WriteOptions,
  path: readonly string[],
  value: string | undefined,
): Promise<{ key: string; revision: string; deleted: number }> {
  const { client, prefix, timeoutMs } = options
  const key = pathToKey(prefix, path)
  for (let attempt = 0; attempt < 5; attempt++) {
    const state = await readPrefix(client, prefix, timeoutMs)
    const affected = [...state.kvs.keys()].filter((k) => k === key || k.startsWith(`${key}/`))
    if (value === undefined && affected.length === 0)
      throw new ConfigError('CONFIG_INVALID_OPTIONS', `nothing to delete: no key at or under ${key}`)
    if (options.schema) {
      const next = new Map([...state.kvs].map(([k, v]) => [k, v.value]))
      if (value === undefined) for (const k of affected) next.delete(k)
      else next.set(key, value)
      const problems = validateLayers(options.schema, [
        ...(options.layers ?? []),
        buildTree(next, prefix, options.schema),
      ])
      if (problems.length > 0)
        throw new ConfigError(
          'CONFIG_INVALID',
          `refusing to write: the result would not satisfy the schema: ${problems.join('; ')}`,
          {
            details: problems,
            keys: [key],
          },
        )
    }
    const res = await withTimeout(
      client.kv.txn({
        compare: unchangedSince(prefix, state),
        success:
          value === undefined
            ? affected.map((k) => ({ request_delete_range: { key: Buffer.from(k) } }))
            : [{ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }],
      }),
      timeoutMs,
      () => timedOut(`etcd (writing ${key})`, timeoutMs),
    )
    if (res.succeeded) return { key, revision: res.header.revision, deleted: value === undefined ? affected.length : 0 }
  }
  throw new ConfigError('CONFIG_TIMEOUT', `${key}: other writers kept changing ${prefix}; nothing written`)
}

/**
 * Compares that hold only if the prefix is as read: no key in it modified or created since (one
 * range compare), and none deleted (one compare per key read, while within etcd's default limit of
 * 128 operations per transaction).
 */
function unchangedSince(prefix: string, state: PrefixState): ICompare[] {
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
function prefixEnd(prefix: Buffer): Buffer {
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
