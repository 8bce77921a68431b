/** The CLI's schedule commands: `schedules` (list) and `unschedule <id>`. */
import { writeList } from './cli-output.js'
import type { Schedule } from './schedule-spec.js'
import type { Engine } from './types.js'

const spec = (s: Schedule): string =>
  s.cron !== undefined ? `cron ${s.cron}${s.timezone === 'UTC' ? '' : ` (${s.timezone})`}` : `every ${s.every} ms`
const when = (date: Date | null): string => (date ? date.toISOString() : '-')

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
    await writeList(
      write,
      json,
      await engine.schedules(),
      'no schedules',
      ['ID', 'SPEC', 'MACHINE', 'NEXT', 'LAST', 'OVERLAP', 'PAUSED'],
      (s) => [
        s.id,
        spec(s),
        s.version === undefined ? s.machine : `${s.machine} v${s.version}`,
        when(s.nextTick),
        when(s.lastTick),
        s.overlap,
        s.paused ? 'yes' : 'no',
      ],
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
