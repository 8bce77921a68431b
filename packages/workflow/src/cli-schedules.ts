/** The CLI's schedule commands: `schedules` (list) and `unschedule <id>`. */
import type { Schedule } from './schedule-spec.js'
import type { Engine } from './types.js'

const spec = (s: Schedule): string =>
  s.cron !== undefined ? `cron ${s.cron}${s.timezone === 'UTC' ? '' : ` (${s.timezone})`}` : `every ${s.every} ms`
const when = (date: Date | null): string => (date ? date.toISOString() : '-')

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? []
  const lines = rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  )
  return `${lines.join('\n')}\n`
}

/** Runs one schedule command; resolves with the exit status (1: no such schedule). */
export async function runScheduleCommand(
  command: 'schedules' | 'unschedule',
  args: readonly string[],
  json: boolean,
  engine: Engine,
  write: (text: string) => Promise<void>,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  if (command === 'schedules') {
    const schedules = await engine.schedules()
    if (json) await write(`${JSON.stringify(schedules, null, 2)}\n`)
    else if (schedules.length === 0) await write('no schedules\n')
    else
      await write(
        table([
          ['ID', 'SPEC', 'MACHINE', 'NEXT', 'LAST', 'OVERLAP', 'PAUSED'],
          ...schedules.map((s) => [
            s.id,
            spec(s),
            s.version === undefined ? s.machine : `${s.machine} v${s.version}`,
            when(s.nextTick),
            when(s.lastTick),
            s.overlap,
            s.paused ? 'yes' : 'no',
          ]),
        ]),
      )
    return 0
  }
  const id = args[0] as string
  const removed = await engine.unschedule(id)
  if (!removed) {
    stderr.write(`backplane-workflow: no schedule ${JSON.stringify(id)}\n`)
    return 1
  }
  await write(json ? `${JSON.stringify({ removed: id })}\n` : `removed schedule ${id}\n`)
  return 0
}
