import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import { postgresStore } from '../../src/stores/postgres.js'
import { requireBuild } from './runner.js'

/** DATABASE_URL, or an error telling how to get it: PostgreSQL tests never skip. */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL
  if (!url) {
    throw new Error(
      'DATABASE_URL is not set: run `npm test` (it starts PostgreSQL through scripts/services.sh and exports it), or by hand: bash scripts/services.sh up postgres && set -a && . <(bash scripts/services.sh env) && set +a',
    )
  }
  return url
}

/** A schema name of its own for one test file, so files can run in parallel. */
export function schemaName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
}

export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await client.end()
  }
}

/**
 * A schema of its own for a test file whose engine processes share PostgreSQL (needs DATABASE_URL
 * and the built package). Its tables are created before the tests, as the processes would race to
 * (harmlessly, under an advisory lock), and it is dropped after them.
 */
export function processSchema(prefix: string): string {
  const schema = schemaName(prefix)
  beforeAll(async () => {
    const url = databaseUrl()
    requireBuild()
    const store = postgresStore({ connectionString: url, schema })
    await store.open()
    await store.close()
  })
  afterAll(async () => {
    const url = process.env.DATABASE_URL
    if (url) await dropSchemas(url, [schema])
  })
  return schema
}
