/**
 * Schedule specs: `engine.schedule`'s options checked and normalised, and the tick maths (the ticks
 * of a cron pattern in a time zone, or of a fixed period). Cron patterns, time zones and daylight
 * saving go through croner: a 02:30 tick on a spring-forward day runs at 03:00, once.
 */
import { DURATION_EXPECTED, type Duration, parseDuration, parseWith } from '@backplane/internal'
import { Cron } from 'croner'
import { z } from 'zod'
import { WorkflowError } from './errors.js'
import type { AnyMachine } from './machine.js'
import type { ScheduleDefinition, ScheduleRecord } from './schedule-store.js'

/** Options of `engine.schedule`. Exactly one of `cron` and `every`. */
export interface ScheduleOptions<I = unknown> {
  /** A cron pattern: 5 fields (minute first) or 6 (seconds first), read in `timezone`. */
  readonly cron?: string | undefined
  /** A fixed period ("15m", "1h", ms): the first tick one period after the schedule is created (or at `startAt`). */
  readonly every?: Duration | undefined
  readonly machine: string | AnyMachine
  /** Default: the newest version registered in the engine that starts the tick. */
  readonly version?: number | undefined
  /** The input of every tick's instance (JSON), or a function of the tick time. */
  readonly input?: I | ((tick: Date) => I) | undefined
  /** What a tick does while the previous tick's instance is still running. Default 'skip'. */
  readonly overlap?: 'skip' | 'queue' | 'allow' | undefined
  /** IANA time zone of `cron` ("Europe/Berlin"). Default 'UTC'. */
  readonly timezone?: string | undefined
  /** Missed ticks to start after downtime, the latest ones: 0 skips them all. Default 1. */
  readonly catchUp?: number | undefined
  /** No tick before this. */
  readonly startAt?: Date | number | string | undefined
  /** No tick after this. */
  readonly endAt?: Date | number | string | undefined
  /** Created paused: no tick until `resumeSchedule`. Default false. */
  readonly paused?: boolean | undefined
}

const instant = z
  .union([z.date(), z.number(), z.string()], { error: 'expected a Date, ms since the epoch or an ISO date string' })
  .transform((value, ctx) => {
    const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(value)
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: `expected a valid date, got ${JSON.stringify(value)}` })
      return z.NEVER
    }
    return ms
  })

const optionsSchema = z
  .object({
    cron: z.string().min(1).optional(),
    every: z.union([z.number(), z.string()]).optional(),
    machine: z.union([
      z.string().min(1),
      z.object({ id: z.string(), version: z.number() }, { error: 'expected a machine id or a defineMachine() result' }),
    ]),
    version: z.number().int().positive().optional(),
    input: z.unknown().optional(),
    overlap: z.enum(['skip', 'queue', 'allow']).default('skip'),
    timezone: z.string().min(1).default('UTC'),
    catchUp: z.number().int().min(0).max(10_000).default(1),
    startAt: instant.optional(),
    endAt: instant.optional(),
    paused: z.boolean().default(false),
  })
  .strict()

const invalid = (message: string, details: string[] = []) =>
  new WorkflowError('WORKFLOW_INVALID_OPTIONS', message, { details })

export function checkScheduleId(id: unknown, what: string): string {
  // The id becomes part of every tick's instance id ("<id>@<ISO time>", at most 200 characters).
  if (typeof id !== 'string' || id.length === 0 || id.length > 160)
    throw invalid(
      `${what}: expected a schedule id (a non-empty string of at most 160 characters), got ${JSON.stringify(id)}`,
    )
  return id
}

/** The options checked (throwing WORKFLOW_INVALID_OPTIONS with what was expected) as a definition, plus the input function. */
export function parseScheduleOptions(
  id: string,
  options: unknown,
  anchor: number,
): { definition: ScheduleDefinition; inputFn: ((tick: Date) => unknown) | undefined } {
  const what = `schedule(${id})`
  const raw = options as Record<string, unknown> | undefined
  const inputFn = typeof raw?.input === 'function' ? (raw.input as (tick: Date) => unknown) : undefined
  const o = parseWith(optionsSchema, options, (message, details) => invalid(message, details), what)
  if ((o.cron === undefined) === (o.every === undefined))
    throw invalid(`${what}: expected exactly one of cron ('0 * * * *') and every ('1h')`)
  let every: number | undefined
  if (o.every !== undefined) {
    every = parseDuration(o.every)
    if (every === undefined || every < 1)
      throw invalid(`${what}: every: expected ${DURATION_EXPECTED} (at least 1 ms), got ${JSON.stringify(o.every)}`)
    if (options && 'timezone' in (options as object))
      throw invalid(`${what}: timezone applies to cron only: drop it, or use cron instead of every`)
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: o.timezone })
  } catch {
    throw invalid(
      `${what}: timezone: expected an IANA time zone ("UTC", "Europe/Berlin"), got ${JSON.stringify(o.timezone)}`,
    )
  }
  if (o.cron !== undefined) {
    try {
      new Cron(o.cron, { timezone: o.timezone, paused: true })
    } catch (error) {
      throw invalid(
        `${what}: cron: expected a cron pattern ("0 * * * *", "*/10 * * * * *"), got ${JSON.stringify(o.cron)}: ${(error as Error).message}`,
      )
    }
  }
  if (o.startAt !== undefined && o.endAt !== undefined && o.endAt < o.startAt)
    throw invalid(`${what}: endAt must not be before startAt`)
  if (inputFn === undefined && o.input !== undefined) {
    try {
      JSON.stringify(o.input)
    } catch (error) {
      throw invalid(
        `${what}: input: expected JSON or a function of the tick, got something not serializable: ${(error as Error).message}`,
      )
    }
  }
  const machine = typeof o.machine === 'string' ? o.machine : o.machine.id
  const version = o.version ?? (typeof o.machine === 'string' ? undefined : o.machine.version)
  const definition: ScheduleDefinition = {
    ...(o.cron !== undefined ? { cron: o.cron } : { every }),
    timezone: o.timezone,
    machine,
    ...(version !== undefined ? { version } : {}),
    ...(inputFn === undefined && o.input !== undefined ? { input: o.input } : {}),
    inputFunction: inputFn !== undefined,
    overlap: o.overlap,
    catchUp: o.catchUp,
    ...(o.startAt !== undefined ? { startAt: o.startAt } : {}),
    ...(o.endAt !== undefined ? { endAt: o.endAt } : {}),
    paused: o.paused,
    anchor,
  }
  return { definition, inputFn }
}

/** Whether two definitions tick at the same times (replacing one by the other keeps the next tick). */
export function sameTicks(a: ScheduleDefinition, b: ScheduleDefinition): boolean {
  return (
    a.cron === b.cron &&
    a.every === b.every &&
    a.timezone === b.timezone &&
    a.startAt === b.startAt &&
    a.endAt === b.endAt &&
    a.anchor === b.anchor
  )
}

const cronOf = (d: ScheduleDefinition) => new Cron(d.cron as string, { timezone: d.timezone, paused: true })

const inWindow = (d: ScheduleDefinition, tick: number | null): number | null =>
  tick === null || (d.endAt !== undefined && tick > d.endAt) ? null : tick

/** The first tick at or after `t`, or null when the schedule has none left. */
export function tickAtOrAfter(d: ScheduleDefinition, t: number): number | null {
  const from = Math.max(t, d.startAt ?? Number.NEGATIVE_INFINITY)
  if (d.every !== undefined) {
    const base = d.startAt ?? d.anchor + d.every
    const k = Math.max(0, Math.ceil((from - base) / d.every))
    return inWindow(d, base + k * d.every)
  }
  // croner looks strictly after its reference, at whole seconds.
  const next = cronOf(d).nextRun(new Date(from - 1))
  return inWindow(d, next ? next.getTime() : null)
}

/** The first tick after `t`. */
export const tickAfter = (d: ScheduleDefinition, t: number): number | null => tickAtOrAfter(d, t + 1)

/** The latest `n` ticks in [from, before), ascending. */
export function latestTicks(d: ScheduleDefinition, from: number, before: number, n: number): number[] {
  if (n <= 0 || before <= from) return []
  const lower = Math.max(from, d.startAt ?? Number.NEGATIVE_INFINITY)
  let ticks: number[]
  if (d.every !== undefined) {
    const base = d.startAt ?? d.anchor + d.every
    const last = Math.ceil((before - base) / d.every) - 1
    ticks = []
    for (let k = last; k >= 0 && ticks.length < n; k--) {
      const tick = base + k * d.every
      if (tick < lower) break
      ticks.push(tick)
    }
  } else {
    ticks = cronOf(d)
      .previousRuns(n, new Date(before))
      .map((date) => date.getTime())
      .filter((tick) => tick >= lower && tick < before)
  }
  return ticks.filter((tick) => d.endAt === undefined || tick <= d.endAt).sort((a, b) => a - b)
}

/** The ticks in [from, to], ascending, at most `limit`. */
export function ticksBetween(d: ScheduleDefinition, from: number, to: number, limit: number): number[] {
  const ticks: number[] = []
  let tick = tickAtOrAfter(d, from)
  while (tick !== null && tick <= to && ticks.length < limit) {
    ticks.push(tick)
    tick = tickAfter(d, tick)
  }
  return ticks
}

/**
 * What is due at `now` for a schedule whose first unhandled tick is `from`: the ticks found within
 * `grace` of their time (on time: all of them), the latest `catchUp` of the older ones (missed), and
 * the next tick after `now`.
 */
export function dueTicks(
  d: ScheduleDefinition,
  from: number,
  now: number,
  grace: number,
): { ticks: number[]; next: number | null } {
  const onTimeFrom = Math.max(from, now - grace)
  const missed = latestTicks(d, from, onTimeFrom, d.catchUp)
  const limit = 10_000
  const onTime = ticksBetween(d, onTimeFrom, now, limit)
  // More on-time ticks than one pass takes (a 1 ms period): the rest are due on the next pass.
  const next = onTime.length === limit ? tickAfter(d, onTime[limit - 1] as number) : tickAfter(d, now)
  return { ticks: [...missed, ...onTime], next }
}

/** The instance id of a tick: the same in every process, so a tick starts once. */
export const tickInstanceId = (scheduleId: string, tick: number): string =>
  `${scheduleId}@${new Date(tick).toISOString()}`

/** A schedule as `engine.schedule`, `engine.schedules` and the CLI show it. */
export interface Schedule {
  readonly id: string
  readonly cron?: string | undefined
  /** The period in ms, for an `every` schedule. */
  readonly every?: number | undefined
  readonly timezone: string
  readonly machine: string
  readonly version?: number | undefined
  readonly overlap: 'skip' | 'queue' | 'allow'
  readonly catchUp: number
  readonly startAt?: Date | undefined
  readonly endAt?: Date | undefined
  readonly paused: boolean
  /** The next tick to start; null once the schedule has ended (`endAt`). */
  readonly nextTick: Date | null
  /** The last tick started, and its instance. */
  readonly lastTick: Date | null
  readonly lastInstance: string | null
  /** With `overlap: 'queue'`: the tick waiting for the previous instance to end. */
  readonly queuedTick: Date | null
  /** Ticks not started because the previous tick's instance was still running. */
  readonly skipped: number
  readonly createdAt: Date
  readonly updatedAt: Date
}

const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms))

export function publicSchedule(record: ScheduleRecord): Schedule {
  const d = record.definition
  return {
    id: record.id,
    ...(d.cron !== undefined ? { cron: d.cron } : { every: d.every }),
    timezone: d.timezone,
    machine: d.machine,
    ...(d.version !== undefined ? { version: d.version } : {}),
    overlap: d.overlap,
    catchUp: d.catchUp,
    ...(d.startAt !== undefined ? { startAt: new Date(d.startAt) } : {}),
    ...(d.endAt !== undefined ? { endAt: new Date(d.endAt) } : {}),
    paused: d.paused,
    nextTick: dateOrNull(record.nextTick),
    lastTick: dateOrNull(record.lastTick),
    lastInstance: record.lastInstance,
    queuedTick: dateOrNull(record.queuedTick),
    skipped: record.skipped,
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  }
}
