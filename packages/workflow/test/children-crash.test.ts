/**
 * Crash test for child workflows: a process drives 200 parents, each spawning a child that waits on
 * a timer and runs an activity, on SQLite, and is killed with SIGKILL at random moments (while
 * parents start, children start, and children end). After the last restart every parent must have
 * moved on exactly once, with its own child's result, and every child must have started once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createReader } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { requireBuild, sleep, startRunner } from './helpers/runner.js'

const COUNT = 200
const KILLS = 4
const dir = mkdtempSync(join(tmpdir(), 'wf-children-crash-'))
const script = fileURLToPath(new URL('./fixtures/family-runner.mjs', import.meta.url))
const env = { DB: join(dir, 'workflows.db'), COUNT: String(COUNT), START: '1', START_RATE: '20' }

beforeAll(() => requireBuild())
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it(`moves every parent on exactly once across ${KILLS} SIGKILLs of the process driving parents and children`, async () => {
  for (let kill = 0; kill < KILLS; kill++) {
    const run = startRunner(env, undefined, script)
    await Promise.race([run.ready, sleep(20_000)])
    await sleep(150 + Math.floor(Math.random() * 500))
    run.child.kill('SIGKILL')
    const exit = await run.exit
    expect(exit.signal, JSON.stringify(exit)).toBe('SIGKILL')
    expect(exit.done, 'the runner finished before it could be killed: the test no longer tests crashes').toBe(false)
  }
  const last = startRunner(env, undefined, script)
  const timeout = setTimeout(() => last.child.kill('SIGKILL'), 90_000)
  const exit = await last.exit
  clearTimeout(timeout)
  expect(exit.stderr).toBe('')
  expect(exit.done).toBe(true)

  const reader = createReader({ store: sqliteStore(env.DB) })
  try {
    const counts = (await reader.counts()).map((c) => `${c.machine} ${c.state} ${c.status} ${c.count}`).sort()
    expect(counts).toEqual([`chore finished done ${COUNT}`, `family done done ${COUNT}`])
    const problems: string[] = []
    for (let i = 0; i < COUNT; i++) {
      const id = `f-${i}`
      const parent = await reader.get(id)
      if ((parent.context as { result?: number }).result !== i * 2)
        problems.push(`${id}: result ${JSON.stringify(parent.context)}`)
      const history = await reader.history(id)
      const ends = history.filter((h) => h.kind === 'child.done' || h.kind === 'child.error')
      if (ends.length !== 1) problems.push(`${id}: ${ends.length} child ends in its history`)
      if (history.map((h) => h.seq).join() !== history.map((_, n) => n + 1).join()) problems.push(`${id}: seq gaps`)
      const child = `${id}/waiting/1`
      const starts = (await reader.history(child)).filter((h) => h.kind === 'start')
      if (starts.length !== 1) problems.push(`${child}: started ${starts.length} times`)
    }
    expect(problems.slice(0, 20)).toEqual([])
  } finally {
    await reader.close()
  }
}, 180_000)
