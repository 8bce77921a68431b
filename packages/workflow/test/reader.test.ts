import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, createReader, defineMachine, memoryStore, type Store, WorkflowError } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { requireBuild, startRunner } from './helpers/runner.js'

const dir = mkdtempSync(join(tmpdir(), 'wf-reader-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const door = defineMachine({
  id: 'door',
  context: z.object({ n: z.number() }),
  initial: 'closed',
  states: {
    closed: { on: { OPEN: 'open', LOCK: 'locked' } },
    open: { on: { CLOSE: 'closed' }, after: { '1h': 'closed' } },
    locked: { type: 'final' },
  },
})

/** A store without countInstances, as a third-party store may be: the reader pages through list. */
function withoutCounts(store: Store): Store & { lists: number } {
  const wrapped = Object.create(store) as Store & { lists: number }
  Object.defineProperty(wrapped, 'countInstances', { value: undefined })
  wrapped.lists = 0
  wrapped.list = (filter) => {
    wrapped.lists++
    return store.list(filter)
  }
  return wrapped
}

async function seeded(count: number) {
  const store = memoryStore()
  const engine = await createEngine({ store, machines: [door] })
  for (let i = 0; i < count; i++) {
    const id = `d-${String(i).padStart(4, '0')}`
    await engine.start(door, { id, input: { n: i } })
    if (i % 3 === 1) await engine.send(id, { type: 'OPEN' })
    if (i % 3 === 2) await engine.send(id, { type: 'LOCK' })
  }
  return { store, engine }
}

const summary = (counts: { machine: string; version: number; state: string; status: string; count: number }[]) =>
  counts.map((c) => `${c.machine} v${c.version} ${c.state} ${c.status} ${c.count}`).sort()

describe('createReader', () => {
  it('lists in pages with a cursor, gets, reads history: no engine needed', async () => {
    const { store, engine } = await seeded(7)
    const reader = createReader({ store, machines: [door] })
    const first = await reader.list({ limit: 3 })
    expect(first.instances.map((i) => i.id)).toEqual(['d-0000', 'd-0001', 'd-0002'])
    expect(first.next).toBe('d-0002')
    const second = await reader.list({ limit: 3, after: first.next ?? undefined })
    const last = await reader.list({ limit: 3, after: second.next ?? undefined })
    expect(last).toMatchObject({ next: null })
    expect(last.instances.map((i) => i.id)).toEqual(['d-0006'])
    // A page that ends exactly at the last instance says so: no empty page after it.
    expect((await reader.list({ limit: 7 })).next).toBeNull()
    expect((await reader.list({ state: 'open' })).instances.map((i) => i.id)).toEqual(['d-0001', 'd-0004'])

    const open = await reader.get('d-0001')
    expect(open).toMatchObject({ state: 'open', status: 'running', context: { n: 1 } })
    expect(open.timers.map((t) => t.delay)).toEqual(['1h'])
    expect((await reader.history('d-0001')).map((h) => [h.kind, h.from, h.to])).toEqual([
      ['start', null, 'closed'],
      ['event', 'closed', 'open'],
    ])
    expect(reader.machine('door', 1)).toBe(door)
    expect(reader.machine('door', 2)).toBeUndefined()
    await engine.close()
  })

  it('counts per machine, version, state and status: with countInstances, and by paging list without it', async () => {
    const { store, engine } = await seeded(2500)
    const expected = ['door v1 closed running 834', 'door v1 locked done 833', 'door v1 open running 833']
    expect(summary(await createReader({ store }).counts())).toEqual(expected)
    const bare = withoutCounts(store)
    const reader = createReader({ store: bare })
    expect(summary(await reader.counts())).toEqual(expected)
    expect(bare.lists).toBe(3) // 1000 + 1000 + 500
    expect(summary(await reader.counts({ status: 'done' }))).toEqual(['door v1 locked done 833'])
    await engine.close()
  })

  it('rejects bad filters with WORKFLOW_INVALID_OPTIONS and calls after close with WORKFLOW_CLOSED', async () => {
    const reader = createReader({ store: memoryStore() })
    for (const filter of [
      { limit: 0 },
      { limit: 100_001 },
      { status: 'asleep' },
      { version: 1.5 },
      { colour: 'red' },
    ]) {
      const error = await reader.list(filter as never).catch((e: unknown) => e)
      expect(WorkflowError.is(error, 'WORKFLOW_INVALID_OPTIONS'), JSON.stringify(filter)).toBe(true)
    }
    expect(() => createReader({ store: {} as Store })).toThrow(/expected a store/)
    expect(WorkflowError.is(await reader.get('').catch((e: unknown) => e), 'WORKFLOW_INVALID_OPTIONS')).toBe(true)
    expect(WorkflowError.is(await reader.get('none').catch((e: unknown) => e), 'WORKFLOW_UNKNOWN_INSTANCE')).toBe(true)
    await reader.close()
    expect(WorkflowError.is(await reader.list().catch((e: unknown) => e), 'WORKFLOW_CLOSED')).toBe(true)
  })

  it('reads a SQLite store another process drives, without getting in its way', async () => {
    requireBuild()
    const db = join(dir, 'driven.db')
    const run = startRunner({
      STORE: 'sqlite',
      DB: db,
      EFFECTS: join(dir, 'effects.db'),
      COUNT: '40',
      START: '1',
      START_RATE: '10',
      PREFIX: 'r',
      OWNER: 'runner',
    })
    const early = run.exit.then((exit) => {
      throw new Error(`the runner ended before it was ready: ${exit.stderr}`)
    })
    await Promise.race([run.ready, early])
    const reader = createReader({ store: sqliteStore(db) })
    const seen = new Set<number>()
    let finished = false
    void run.exit.then(() => {
      finished = true
    })
    while (!finished) {
      const counts = await reader.counts()
      seen.add(counts.reduce((sum, c) => sum + (c.status === 'done' ? c.count : 0), 0))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const exit = await run.exit
    expect(exit, exit.stderr).toMatchObject({ code: 0, done: true })
    // The reader watched the instances end one after another, while the runner drove them.
    expect(seen.size).toBeGreaterThan(2)
    const final = await reader.counts()
    expect(final.reduce((sum, c) => sum + c.count, 0)).toBe(40)
    expect(final.every((c) => c.status === 'done')).toBe(true)
    const ids: string[] = []
    for (
      let page = await reader.list({ limit: 15 });
      ;
      page = await reader.list({ limit: 15, after: page.next as string })
    ) {
      ids.push(...page.instances.map((i) => i.id))
      if (!page.next) break
    }
    expect(ids).toHaveLength(40)
    await reader.close()
  }, 60_000)
})
