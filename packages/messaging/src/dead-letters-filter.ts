import { z } from 'zod'
import { parseOptions } from './options.js'

// An instant as a Date or an RFC 3339 timestamp with its offset (`2026-12-01T09:30:00Z`).
const instant = z.union([
  z.date().refine((d) => !Number.isNaN(d.getTime()), 'expected a valid Date'),
  z.iso.datetime({ offset: true }).transform((text) => new Date(text)),
])

const filterFields = {
  /** `max-attempts`, `non-retryable`, `schema`, `malformed`, or another producer's reason. */
  reason: z.string().min(1).max(200).optional(),
  /** Dead-lettered at or after this instant (`backplane-dlq-at`). */
  since: instant.optional(),
  /** Dead-lettered before this instant. */
  until: instant.optional(),
  /** The message's CloudEvents id. */
  id: z.string().min(1).max(1024).optional(),
  status: z.enum(['pending', 'replayed']).optional(),
  /** At most this many, the oldest first. */
  limit: z.number().int().min(1).max(1_000_000).optional(),
}

const ordered = {
  check: (f: { since?: Date | undefined; until?: Date | undefined }) =>
    f.since === undefined || f.until === undefined || f.since.getTime() < f.until.getTime(),
  params: { message: 'since must be before until', path: ['since'] },
}

export const deadLetterFilterSchema = z.strictObject(filterFields).refine(ordered.check, ordered.params)

export const replayFilterSchema = z
  .strictObject({
    ...filterFields,
    /** Replay again those already replayed (skipped otherwise). */
    again: z.boolean().optional(),
  })
  .refine(ordered.check, ordered.params)

export type DeadLetterFilter = z.input<typeof deadLetterFilterSchema>
export type ResolvedDeadLetterFilter = z.output<typeof deadLetterFilterSchema>
export type ReplayFilter = z.input<typeof replayFilterSchema>
export type ResolvedReplayFilter = z.output<typeof replayFilterSchema>

/** A filter, checked: `MESSAGING_INVALID_OPTIONS` saying which field is wrong and what was expected. */
export function parseDeadLetterFilter(input: unknown): ResolvedDeadLetterFilter {
  return parseOptions(deadLetterFilterSchema, input, 'dead-letter filter')
}

export function parseReplayFilter(input: unknown): ResolvedReplayFilter {
  return parseOptions(replayFilterSchema, input, 'dead-letter replay')
}

/** What a filter looks at: the fields of a dead letter it can match. */
export interface Filterable {
  readonly id: string
  readonly reason: string
  readonly at: Date
  readonly status: 'pending' | 'replayed'
}

/** Every condition given must hold; `limit` is the caller's to apply, after sorting. */
export function matchesFilter(entry: Filterable, filter: ResolvedDeadLetterFilter): boolean {
  if (filter.reason !== undefined && entry.reason !== filter.reason) return false
  if (filter.id !== undefined && entry.id !== filter.id) return false
  if (filter.status !== undefined && entry.status !== filter.status) return false
  const at = entry.at.getTime()
  if (filter.since !== undefined && !(at >= filter.since.getTime())) return false
  if (filter.until !== undefined && !(at < filter.until.getTime())) return false
  return true
}
