/** Tables the PostgreSQL store's optional method groups create on first use. */

type Query = (what: string, sql: string) => Promise<unknown>

/**
 * Runs `ddl` once, under the store's DDL advisory lock (so processes starting together do not
 * race), on the first call of the returned function; a failure is reported as `what` and tried
 * again on the next call.
 */
export function ensureOnce(query: Query, what: string, lockKey: string, ddl: string): () => Promise<void> {
  let ready: Promise<void> | undefined
  return () => {
    // One simple-protocol query is one transaction: the advisory lock holds until the DDL is done.
    ready ??= query(what, `SELECT pg_advisory_xact_lock(hashtext('${lockKey.replace(/'/g, "''")}'));\n${ddl}`).then(
      () => undefined,
      (error) => {
        ready = undefined
        throw error
      },
    )
    return ready
  }
}

/** The quoted name of an index of `table` (quoted, schema-qualified): without the schema, as it lives in its table's. */
export function indexName(table: string, suffix: string): string {
  return table.slice(table.lastIndexOf('."') + 1).replace(/"$/, `_${suffix}"`)
}
