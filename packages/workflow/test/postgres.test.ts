import { describe, expect, it } from 'vitest'
import type { Store } from '../src/index.js'
import { postgresStore } from '../src/stores/postgres.js'
import { storeConformance } from './conformance/store-suite.js'
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

    it('reports an unreachable server as WORKFLOW_STORE_UNAVAILABLE without the password', async () => {
      const store = postgresStore('postgres://user:secret@127.0.0.1:1/none')
      const error = (await store.open().catch((e: unknown) => e)) as Error & { code?: string }
      expect(error.code).toBe('WORKFLOW_STORE_UNAVAILABLE')
      expect(error.message).toMatch(/postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/none/)
      expect(error.message).not.toMatch(/secret/)
    })
  })
}
