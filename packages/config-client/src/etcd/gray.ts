/**
 * Gray releases: changes that only chosen instances see until they are promoted to everyone or
 * aborted. An instance is in a gray release if it matches ANY of its targets: its id is listed,
 * its labels include every listed label, or its id hashes into the first `percent` of 100 buckets.
 * The hash is salted with the gray release's id and is stable: a restarted instance lands in the
 * same bucket, and raising the percentage only adds instances.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { diffKeys, type ReleaseChange, recordShape } from './release-plan.js'

export const grayTargetsSchema = z
  .strictObject({
    /** Instance ids, as the clients' `instance.id` option names them. */
    instances: z.array(z.string().min(1)).optional(),
    /** Labels an instance must all have (from its `instance.labels` option, e.g. its registry metadata). */
    labels: z.record(z.string(), z.string()).optional(),
    /** Percent of instances, by a stable hash of the instance id (0 < percent <= 100). */
    percent: z.number().gt(0).max(100).optional(),
  })
  .refine((t) => (t.instances?.length ?? 0) > 0 || Object.keys(t.labels ?? {}).length > 0 || t.percent !== undefined, {
    error: 'a gray release needs a target: instances, labels or percent',
  })

export type GrayTargets = z.input<typeof grayTargetsSchema>

export const grayRecordSchema = z.object({
  ...recordShape,
  status: z.enum(['active', 'promoted', 'aborted']),
  targets: grayTargetsSchema,
  /** key → the value gray instances see, or null for a key they do not see. */
  overrides: z.record(z.string(), z.string().nullable()),
  /** When it was promoted or aborted, by whom, and (promoted) as which release. */
  ended: z.object({ time: z.string(), author: z.string(), release: z.string().optional() }).optional(),
})

export type GrayRelease = z.output<typeof grayRecordSchema> & { readonly changes: readonly ReleaseChange[] }

/** Who a client is, for gray targeting and the status list. */
export interface InstanceIdentity {
  readonly id: string
  readonly labels: Readonly<Record<string, string>>
}

/** The instance's bucket in [0, 100) for this gray release. */
export function bucketOf(grayId: string, instanceId: string): number {
  const digest = createHash('sha256').update(`${grayId}\u0000${instanceId}`).digest()
  return (digest.readUInt32BE(0) / 0x1_0000_0000) * 100
}

export function inGray(gray: Pick<GrayRelease, 'id' | 'targets'>, instance: InstanceIdentity): boolean {
  const { instances, labels, percent } = gray.targets
  if (instances?.includes(instance.id)) return true
  const wanted = Object.entries(labels ?? {})
  if (wanted.length > 0 && wanted.every(([name, value]) => instance.labels[name] === value)) return true
  return percent !== undefined && bucketOf(gray.id, instance.id) < percent
}

/** The keys a gray instance sees: the release's keys with the gray overrides on top. */
export function withOverrides(
  kvs: ReadonlyMap<string, string>,
  overrides: Readonly<Record<string, string | null>>,
): Map<string, string> {
  const out = new Map(kvs)
  for (const [key, value] of Object.entries(overrides)) {
    if (value === null) out.delete(key)
    else out.set(key, value)
  }
  return out
}

/** The overrides that turn `from` into `to`. */
export function overridesBetween(
  from: ReadonlyMap<string, string>,
  to: ReadonlyMap<string, string>,
): Record<string, string | null> {
  return Object.fromEntries(diffKeys(from, to).map((c) => [c.key, c.next ?? null]))
}
