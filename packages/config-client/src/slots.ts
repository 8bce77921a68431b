/**
 * The sources of a Config as it tracks them: their unique names, their latest trees and whether
 * they are in touch; loading one with the start timeout and closing one.
 */
import { withTimeout } from '@backplane/internal'
import { ConfigError, messageOf, timedOut } from './errors.js'
import { type ConfigLogger, safeLog } from './logger.js'
import { SNAPSHOT_FORMAT, type SnapshotData } from './snapshot.js'
import type { ConfigSource, ReleaseInfo, SourceContext, Unwatch } from './sources/types.js'
import { type ConfigTree, getAt } from './tree.js'

/** Errors from these codes mean the source is misconfigured, not down: no snapshot fallback for them. */
export const FATAL = new Set(['CONFIG_SOURCE_FAILED', 'CONFIG_INVALID_OPTIONS', 'CONFIG_ETCD_MISSING', 'CONFIG_SEALED'])

export interface Slot {
  readonly name: string
  readonly source: ConfigSource
  /** The source's newest tree: what the next candidate is built from. */
  latest: ConfigTree
  /** Whether the source is in touch (false: down at start, or reconnecting). */
  available: boolean
  /** While not `available`: when (Date.now()) its values were last known current, for the staleness metric. */
  staleSince?: number | undefined
  /** Whether `load` has succeeded at least once (false: serving the snapshot's tree or nothing). */
  live: boolean
  /** Whether the tree may go into the snapshot (not when it is a stand-in from allowDefaultsOnly). */
  snapshotable: boolean
  unwatch: Unwatch | undefined
  context: SourceContext
  /** The release `latest` is (sources with releases), and the release last served. */
  release?: ReleaseInfo | undefined
  served?: ReleaseInfo | undefined
}

/** After `latest` of every slot was applied: each slot's release is served; the sources hear of it. */
export function markServed(slots: readonly Slot[]): void {
  for (const slot of slots) {
    if (!slot.release || slot.served === slot.release) continue
    slot.served = slot.release
    try {
      slot.source.served?.(slot.release)
    } catch {
      // A report is best effort: the configuration is served either way.
    }
  }
}

/** The release the config serves: the highest-precedence source's that has one. */
export function servedRelease(slots: readonly Slot[]): ReleaseInfo | undefined {
  for (let i = slots.length - 1; i >= 0; i--) if (slots[i]?.served) return slots[i]?.served
  return undefined
}

/** Each source's name, made unique: `file:a.yaml`, `memory`, `memory#2`, `source#3` for an unnamed one. */
export function sourceNames(sources: readonly ConfigSource[]): string[] {
  const used = new Map<string, number>()
  return sources.map((source, i) => {
    const base = source.name ?? `source#${i + 1}`
    const n = (used.get(base) ?? 0) + 1
    used.set(base, n)
    return n === 1 ? base : `${base}#${n}`
  })
}

export type LoadResult = { ok: true; tree: ConfigTree } | { ok: false; error: unknown }

/** Loads a source, giving up after `timeout` ms; never throws. */
export async function loadSource(slot: Slot, timeout: number): Promise<LoadResult> {
  try {
    const tree = await withTimeout(
      Promise.resolve().then(() => slot.source.load(slot.context)),
      timeout,
      () => timedOut(`config source ${slot.name}`, timeout),
    )
    if (tree === null || typeof tree !== 'object' || Array.isArray(tree))
      throw new ConfigError('CONFIG_SOURCE_FAILED', `config source ${slot.name}: load() must return a plain object`, {
        source: slot.name,
      })
    return { ok: true, tree }
  } catch (error) {
    return { ok: false, error }
  }
}

/** Stops a source's watch and closes it; a failure is only logged. */
export async function closeSource(slot: Slot, logger: ConfigLogger): Promise<void> {
  try {
    await slot.unwatch?.()
    slot.unwatch = undefined
    await slot.source.close?.()
  } catch (error) {
    safeLog(logger, 'warn', { source: slot.name, err: messageOf(error) }, 'closing a config source failed')
  }
}

export function resultError(result: LoadResult | undefined): unknown {
  return result && !result.ok ? result.error : undefined
}

export function asConfigError(error: unknown, source: string): ConfigError {
  if (ConfigError.is(error)) return error
  return new ConfigError('CONFIG_SOURCE_FAILED', `config source ${source}: ${messageOf(error)}`, {
    source,
    cause: error,
  })
}

/** Which source supplies the value at `path` (the highest-precedence one holding it), and its key. */
export function originOf(
  slots: readonly Slot[],
  path: string[],
): { source: string | undefined; key: string | undefined } {
  for (let i = slots.length - 1; i >= 0; i--) {
    const slot = slots[i] as Slot
    if (getAt(slot.latest, path) !== undefined)
      return { source: slot.name, key: slot.source.keyOf?.(path) ?? path.join('.') }
  }
  return { source: undefined, key: undefined }
}

/** The snapshot of the sources' trees, leaving out the stand-ins that allowDefaultsOnly made up. */
export function snapshotOf(slots: readonly Slot[], revision: number | undefined): SnapshotData {
  const sources: Record<string, ConfigTree> = {}
  for (const slot of slots)
    if (slot.snapshotable) sources[slot.name] = slot.source.snapshotTree?.(slot.latest) ?? slot.latest
  return {
    format: SNAPSHOT_FORMAT,
    version: 1,
    savedAt: new Date().toISOString(),
    ...(revision === undefined ? {} : { revision }),
    sources,
  }
}

/**
 * A source's tree from the snapshot, as the source restores it (the etcd source opens sealed values
 * again); undefined when the snapshot has none or the source cannot restore it (logged why).
 */
export function treeFromSnapshot(slot: Slot, snapshot: SnapshotData | undefined, logger: ConfigLogger) {
  const stored = snapshot?.sources[slot.name]
  if (stored === undefined || !slot.source.restoreTree) return stored
  try {
    return slot.source.restoreTree(stored, slot.context)
  } catch (error) {
    safeLog(
      logger,
      'warn',
      { source: slot.name, code: ConfigError.is(error) ? error.code : undefined, err: messageOf(error) },
      "the snapshot's values of this config source cannot be restored: treated as missing",
    )
    return undefined
  }
}
