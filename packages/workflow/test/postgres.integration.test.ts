import { describe, expect, it } from 'vitest'
import type { Store } from '../src/index.js'
import { postgresStore } from '../src/stores/postgres.js'
import { storeConformance } from '../src/testing/index.js'
import { databaseUrl, dropSchemas, schemaName } from './helpers/pg.js'

const url = process.env.DATABASE_URL
if (!url) {
  it('needs PostgreSQL', () => {
    databaseUrl()
  })
} else {
  const schemas: string[] = []
  const schemaOf = new WeakMap<Store, string>()
  storeConformance('postgres', {
    create() {
      const schema = schemaName('wf_conf')
      schemas.push(schema)
      const store = postgresStore({ connectionString: url, schema, max: 4 })
      schemaOf.set(store, schema)
      return store
    },
    reopen(store) {
      const schema = schemaOf.get(store) as string
      const again = postgresStore({ connectionString: url, schema, max: 4 })
      schemaOf.set(again, schema)
      return again
    },
    cleanup: () => dropSchemas(url, schemas),
  })

  describe('postgres store options', () => {
    it('refuses a bad schema name and a missing connection', () => {
      expect(() => postgresStore({ connectionString: url, schema: 'a;drop' })).toThrow(/expected a plain identifier/)
      expect(() => postgresStore({})).toThrow(/expected a connection string/)
    })

    it('refuses batch and pool sizes that are not positive integers', () => {
      for (const bad of [{ writers: 0 }, { maxBatch: 1.5 }, { max: -1 }]) {
        const error = (() => {
          try {
            postgresStore({ connectionString: url, ...bad })
          } catch (e) {
            return e as Error & { code?: string }
          }
        })()
        expect(error?.code).toBe('WORKFLOW_INVALID_OPTIONS')
        expect(error?.message).toMatch(/expected a positive integer/)
      }
    })

    it('splits a burst of commits across its writers, each commit applied once', async () => {
      const schema = schemaName('wf_split')
      schemas.push(schema)
      const store = postgresStore({ connectionString: url, schema, max: 4, writers: 3, maxBatch: 7 })
      await store.open()
      try {
        const ids = Array.from({ length: 100 }, (_, n) => `split-${n}`)
        const instance = (id: string, revision: number) => ({
          id,
          machine: 'm',
          version: 1,
          state: revision % 2 === 0 ? 'b' : 'a',
          status: 'running' as const,
          context: { n: revision },
          revision,
          createdAt: 1,
          updatedAt: revision,
          timers: [],
          tasks: [],
        })
        const step = (id: string, revision: number) =>
          store.commit({
            instance: instance(id, revision),
            expectedRevision: revision - 1,
            history: [
              {
                instanceId: id,
                seq: revision,
                at: revision,
                kind: 'event',
                event: { n: revision },
                from: null,
                to: 'a',
              },
            ],
            outbox: [],
          })
        await Promise.all(ids.map((id) => step(id, 1)))
        for (let revision = 2; revision <= 4; revision++) {
          const results = await Promise.all(ids.map((id) => step(id, revision)))
          expect(results.every((r) => r.status === 'committed')).toBe(true)
        }
        for (const id of ['split-0', 'split-57', 'split-99']) {
          expect((await store.load(id))?.revision).toBe(4)
          expect((await store.history(id)).map((h) => h.seq)).toEqual([1, 2, 3, 4])
        }
      } finally {
        await store.close()
      }
    })

    it('reports an unreachable server as WORKFLOW_STORE_UNAVAILABLE without the password', async () => {
      const store = postgresStore('postgres://user:secret@127.0.0.1:1/none')
      const error = (await store.open().catch((e: unknown) => e)) as Error & { code?: string }
      expect(error.code).toBe('WORKFLOW_STORE_UNAVAILABLE')
      expect(error.message).toMatch(/postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/none/)
      expect(error.message).not.toMatch(/secret/)
    })
  })
}
