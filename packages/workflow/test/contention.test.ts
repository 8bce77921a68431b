/**
 * Two engines on one store: one drives the instance (worker), the other only sends (worker: false,
 * like an API process). The driver commits queued sends back to back from its cache; the sender's
 * compare-and-set must still get through, not give up after a burst of conflicts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, defineMachine, type Engine, memoryStore, type Store } from '../src/index.js'
import { sqliteStore } from '../src/stores/sqlite.js'

const tally = defineMachine({
  id: 'tally',
  context: z.object({ n: z.number().int(), from: z.record(z.string(), z.number().int()) }),
  initial: 'open',
  states: {
    open: {
      on: {
        ADD: {
          assign: (c, e) => {
            const by = String(e.by)
            return { n: c.n + 1, from: { ...c.from, [by]: (c.from[by] ?? 0) + 1 } }
          },
        },
      },
    },
  },
})

const engines: Engine[] = []
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close()
})

const dir = mkdtempSync(join(tmpdir(), 'wf-contention-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const stores: Record<string, () => [Store, Store]> = {
  memory: () => {
    const store = memoryStore()
    return [store, store]
  },
  // Two connections to one file, as two processes would have.
  sqlite: () => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.db`)
    return [sqliteStore(path), sqliteStore(path)]
  },
}

describe.each(Object.keys(stores))('sends from two engines to one instance (%s)', (kind) => {
  it('a sender without a worker gets every send through while the driver commits a queue of 300', async () => {
    const [driverStore, senderStore] = (stores[kind] as () => [Store, Store])()
    const driver = await createEngine({ store: driverStore, machines: [tally] })
    const sender = await createEngine({ store: senderStore, machines: [tally], worker: false })
    engines.push(sender, driver)
    await driver.start(tally, { id: 't-1', input: { n: 0, from: {} } })

    const fromDriver = Array.from({ length: 300 }, () => driver.send('t-1', { type: 'ADD', by: 'driver' }))
    const fromSender = Array.from({ length: 30 }, () => sender.send('t-1', { type: 'ADD', by: 'sender' }))
    const results = await Promise.allSettled([...fromDriver, ...fromSender])

    const rejected = results.filter((r) => r.status === 'rejected')
    expect(rejected.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([])
    const instance = await driver.get('t-1')
    expect(instance.context).toEqual({ n: 330, from: { driver: 300, sender: 30 } })
    // Every send is one history row: none lost, none applied twice.
    expect((await driver.history('t-1')).length).toBe(331)
  })
})
