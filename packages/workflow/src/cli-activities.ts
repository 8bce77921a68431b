/** The CLI's activity commands: `activities` (list), `pause-activity <name>` and `resume-activity <name>`. */
import { writeList } from './cli-output.js'
import type { ActivityState, Engine } from './types.js'

export type ActivityCommand = 'activities' | 'pause-activity' | 'resume-activity'

const breaker = (s: ActivityState): string =>
  s.breaker === 'closed' ? 'closed' : `${s.breaker} until ${s.openUntil?.toISOString() ?? '-'}`

/** Runs one activity command; resolves with the exit status. */
export async function runActivityCommand(
  command: ActivityCommand,
  args: readonly string[],
  json: boolean,
  engine: Engine,
  write: (text: string) => Promise<void>,
): Promise<number> {
  if (command === 'activities') {
    await writeList(
      write,
      json,
      await engine.activities(),
      'no activities: none is paused and no breaker has opened',
      ['ACTIVITY', 'PAUSED', 'BREAKER', 'FAILURES'],
      (s) => [s.activity, s.paused ? 'yes' : 'no', breaker(s), String(s.failures)],
    )
    return 0
  }
  const name = args[0] as string
  const state = command === 'pause-activity' ? await engine.pauseActivity(name) : await engine.resumeActivity(name)
  if (json) await write(`${JSON.stringify(state)}\n`)
  else
    await write(
      command === 'pause-activity'
        ? `paused ${name}: no attempt of it starts until resume-activity (engines see it within their pollInterval)\n`
        : `resumed ${name}: its attempts run again (breaker ${state.breaker})\n`,
    )
  return 0
}
