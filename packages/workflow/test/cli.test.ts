import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../src/cli.js'
import { createEngine, type Engine, NonRetryableError } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
// @ts-expect-error: a plain .mjs fixture without types
import { ticket } from './fixtures/cli.config.mjs'
import { packageDir, requireBuild } from './helpers/runner.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-cli-'))
const db = join(dir, 'workflows.db')
const config = join(packageDir, 'test/fixtures/cli.config.mjs')
let driver: Engine
let notifyFails = true

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c) => {
    out += c
  })
  stderr.on('data', (c) => {
    err += c
  })
  const code = await main(['--config', config, ...args], { stdout, stderr, env: { WF_CLI_DB: db } })
  return { code, out, err }
}

beforeAll(async () => {
  process.env.WF_CLI_DB = db
  // The process that drives the store: runs the activity and picks up what the CLI commits.
  driver = await createEngine({
    store: sqliteStore(db),
    machines: [ticket],
    pollInterval: 50,
    activities: {
      notify: async () => {
        if (notifyFails) throw new NonRetryableError('mail server said no')
        return { sent: true }
      },
    },
  })
  await driver.start(ticket, { id: 't-1', input: { title: 'printer on fire' } })
  await driver.start(ticket, { id: 't-2', input: { title: 'coffee' } })
  await driver.send('t-2', { type: 'ASSIGN' })
  await driver.waitFor('t-2', (i) => i.status === 'failed')
})

afterAll(async () => {
  await driver.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('backplane-workflow', () => {
  it('lists instances, filtered', async () => {
    const all = await cli('list')
    expect(all.code).toBe(0)
    expect(all.out).toMatch(/^ID\s+MACHINE\s+STATE\s+STATUS\s+UPDATED\n/)
    expect(all.out).toMatch(/t-1\s+ticket v1\s+open\s+running/)
    expect(all.out).toMatch(/t-2\s+ticket v1\s+assigned\s+failed/)
    const failed = await cli('list', '--status', 'failed', '--json')
    expect(JSON.parse(failed.out)).toMatchObject({ instances: [{ id: 't-2' }], next: null })
  })

  it('says when there are more instances than one page, and how to get the next', async () => {
    const first = await cli('list', '--limit', '1')
    expect(first.out).toMatch(/t-1\s+ticket v1/)
    expect(first.out).not.toMatch(/t-2/)
    expect(first.out).toContain('more instances: the next page is --after t-1')
    const second = await cli('list', '--limit', '1', '--after', 't-1')
    expect(second.out).toMatch(/t-2\s+ticket v1/)
    expect(second.out).not.toContain('more instances')
  })

  it('shows an instance with its history', async () => {
    const shown = await cli('show', 't-2')
    expect(shown.code).toBe(0)
    expect(shown.out).toContain('state:    assigned (failed)')
    expect(shown.out).toContain('failure:  activity notify failed: mail server said no')
    expect(shown.out).toMatch(/1\s+\S+ \S+Z\s+start\s+-\s+open\s+start/)
    expect(shown.out).toMatch(/2\s+\S+ \S+Z\s+event\s+open\s+assigned\s+ASSIGN/)
    const history = JSON.parse((await cli('history', 't-2', '--json')).out) as { kind: string }[]
    expect(history.map((e) => e.kind)).toEqual(['start', 'event', 'failed'])
  })

  it('sends an event (idempotent by --event-id) and retries a failed instance, which the driving engine then runs', async () => {
    expect((await cli('send', 't-1', 'CLOSE', '--event-id', 'ops-1')).out).toBe('applied: t-1 is in closed (done)\n')
    expect((await cli('send', 't-1', 'CLOSE', '--event-id', 'ops-1')).out).toBe('duplicate: t-1 is in closed (done)\n')
    notifyFails = false
    const retried = await cli('retry', 't-2')
    expect(retried).toMatchObject({ code: 0, out: 'retrying: t-2 is running in assigned\n' })
    const waiting = await driver.waitFor('t-2', (i) => i.state === 'waiting', { timeout: 5000 })
    expect(waiting.timers.map((t) => t.delay)).toEqual(['2h'])
  })

  it('cancels an instance with a reason, which its history keeps, and lists it by status', async () => {
    await driver.start(ticket, { id: 't-9', input: { title: 'to be dropped' } })
    const cancelled = await cli('cancel', 't-9', '--reason', 'duplicate ticket')
    expect(cancelled).toMatchObject({ code: 0, out: 't-9 is cancelled in open\n' })
    const history = await cli('history', 't-9', '--json')
    expect(JSON.parse(history.out).at(-1)).toMatchObject({ kind: 'cancelled', event: { reason: 'duplicate ticket' } })
    const listed = await cli('list', '--status', 'cancelled', '--json')
    expect(JSON.parse(listed.out).instances.map((i: { id: string }) => i.id)).toEqual(['t-9'])
    expect((await cli('cancel', 'nope')).code).toBe(1)
  })

  it('prints the Mermaid diagram', async () => {
    const { code, out } = await cli('mermaid', 'ticket')
    expect(code).toBe(0)
    expect(out).toContain('stateDiagram-v2\n')
    expect(out).toContain('  waiting --> closed: after 2h\n')
  })

  it('exits 1 for an unknown instance or machine, 2 for bad usage', async () => {
    expect(await cli('show', 'nope')).toMatchObject({
      code: 1,
      err: expect.stringContaining('WORKFLOW_UNKNOWN_INSTANCE'),
    })
    expect((await cli('mermaid', 'nope')).code).toBe(1)
    expect(await cli('frobnicate')).toMatchObject({
      code: 2,
      err: expect.stringContaining('unknown command "frobnicate"'),
    })
    expect(await cli('send', 't-1')).toMatchObject({
      code: 2,
      err: expect.stringContaining('send expects an instance id and an event type'),
    })
    expect(await cli('send', 't-1', 'X', '--data', '[1]')).toMatchObject({
      code: 2,
      err: expect.stringContaining('--data: expected a JSON object'),
    })
    const missing = await main(['list', '--config', join(dir, 'none.mjs')], {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
    })
    expect(missing).toBe(2)
  })

  it('serves the inspector (ui) over --store or --config until stopped, and prints its URL', async () => {
    const serveUi = async (args: string[]) => {
      const stdout = new PassThrough()
      const stderr = new PassThrough()
      const stop = new AbortController()
      let out = ''
      let err = ''
      stdout.on('data', (c) => {
        out += c
      })
      stderr.on('data', (c) => {
        err += c
      })
      const exit = main(['ui', '--port', '0', ...args], { stdout, stderr, env: { WF_CLI_DB: db }, signal: stop.signal })
      for (let waited = 0; !out.includes('http://') && waited < 10_000; waited += 20)
        await new Promise((resolve) => setTimeout(resolve, 20))
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0]
      expect(url, `${out}${err}`).toBeDefined()
      const get = async (path: string) => (await fetch(`${url}${path}`)).json()
      const end = async () => {
        stop.abort()
        return { code: await exit, out, err }
      }
      return { url: url as string, get, stop: end }
    }

    const byStore = await serveUi(['--store', db])
    const counts = (await byStore.get('api/counts')) as { machines: unknown[]; counts: { machine: string }[] }
    expect(counts.machines).toEqual([])
    expect(counts.counts.map((c) => c.machine)).toContain('ticket')
    // Without the definitions, the diagram comes from the history.
    expect(((await byStore.get('api/diagram?machine=ticket&version=1')) as { source: string }).source).toBe('history')
    expect(await byStore.stop()).toMatchObject({ code: 0, err: '' })

    const byConfig = await serveUi(['--config', config])
    expect(((await byConfig.get('api/diagram?machine=ticket&version=1')) as { source: string }).source).toBe(
      'definition',
    )
    const stopped = await byConfig.stop()
    expect(stopped.code).toBe(0)
    expect(stopped.out).toMatch(/^Workflow inspector on http:\/\/127\.0\.0\.1:\d+\/ \(read-only/)
    await expect(fetch(byConfig.url)).rejects.toThrow()
  })

  it('refuses ui options it cannot use', async () => {
    const run = (...args: string[]) => {
      const stderr = new PassThrough()
      let err = ''
      stderr.on('data', (c) => {
        err += c
      })
      return main(args, { stdout: new PassThrough(), stderr }).then((code) => ({ code, err }))
    }
    expect(await run('ui', '--store', join(dir, 'none.db'))).toMatchObject({
      code: 2,
      err: expect.stringContaining('no SQLite file at'),
    })
    expect(await run('ui', '--store', db, '--config', config)).toMatchObject({
      code: 2,
      err: expect.stringContaining('ui reads --store or --config, not both'),
    })
    expect(await run('ui', '--store', 'memory://')).toMatchObject({ code: 2, err: expect.stringContaining('memory:') })
    expect(await run('ui', '--port', '70000', '--store', db)).toMatchObject({
      code: 2,
      err: expect.stringContaining('--port'),
    })
    expect(await run('list', '--port', '1', '--config', config)).toMatchObject({
      code: 2,
      err: expect.stringContaining('--store, --port and --host are options of ui'),
    })
  })

  it('runs as the built bin', () => {
    requireBuild()
    const bin = join(packageDir, 'bin/backplane-workflow.js')
    expect(execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' })).toMatch(/^Usage:/)
    const listed = execFileSync(process.execPath, [bin, 'list', '--config', config], {
      encoding: 'utf8',
      env: { ...process.env, WF_CLI_DB: db },
    })
    expect(listed).toMatch(/t-1\s+ticket v1\s+closed\s+done/)
  })
})

describe('backplane-workflow schedules', () => {
  it('lists schedules and removes one (exit 1 for an unknown id)', async () => {
    await driver.schedule('nightly', {
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      machine: ticket,
      input: { title: 'nightly report' },
      paused: true,
    })
    const listed = await cli('schedules')
    expect(listed.code).toBe(0)
    expect(listed.out).toMatch(/^ID\s+SPEC\s+MACHINE\s+NEXT\s+LAST\s+OVERLAP\s+PAUSED\n/)
    expect(listed.out).toMatch(/nightly\s+cron 0 3 \* \* \* \(Europe\/Berlin\)\s+ticket v1\s+\S+Z\s+-\s+skip\s+yes/)
    expect(JSON.parse((await cli('schedules', '--json')).out)).toMatchObject([{ id: 'nightly', paused: true }])
    expect(await cli('unschedule', 'nightly')).toMatchObject({ code: 0, out: 'removed schedule nightly\n' })
    expect(await cli('unschedule', 'nightly')).toMatchObject({ code: 1, err: expect.stringContaining('no schedule') })
    expect((await cli('schedules')).out).toBe('no schedules\n')
    expect((await cli('unschedule')).code).toBe(2)
  })
})

describe('backplane-workflow activities', () => {
  it('pauses and resumes an activity type for every engine on the store', async () => {
    expect((await cli('activities')).out).toBe('no activities: none is paused and no breaker has opened\n')
    const paused = await cli('pause-activity', 'notify')
    expect(paused).toMatchObject({ code: 0, out: expect.stringContaining('paused notify') })
    expect((await cli('activities')).out).toMatch(
      /^ACTIVITY\s+PAUSED\s+BREAKER\s+FAILURES\nnotify\s+yes\s+closed\s+0\n$/,
    )
    // The driving engine reads it from the store.
    expect(await driver.activities()).toMatchObject([{ activity: 'notify', paused: true, breaker: 'closed' }])
    expect(JSON.parse((await cli('resume-activity', 'notify', '--json')).out)).toMatchObject({
      activity: 'notify',
      paused: false,
    })
    expect(await driver.activities()).toMatchObject([{ activity: 'notify', paused: false }])
    expect(await cli('pause-activity')).toMatchObject({ code: 2, err: expect.stringContaining('an activity name') })
  })
})
