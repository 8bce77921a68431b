import type { Etcd3 } from 'etcd3'
/** Server addresses come from scripts/services.sh through `npm test`; a test without them fails, loudly. */
export function requireEtcd(): string {
  const value = process.env.ETCD_ENDPOINTS
  if (!value) {
    throw new Error(
      'ETCD_ENDPOINTS is not set: run the tests with `npm test`, which starts etcd (scripts/services.sh up) and exports its address',
    )
  }
  return value
}

let counter = 0

/**
 * Everything this test process writes to the shared etcd goes under its own root, so that test
 * files running in parallel never clean up each other's keys.
 */
export const OWN_ROOT = `/test/config-client/p${process.pid}/`

/** A key prefix no other test (or earlier run) uses. */
export function uniquePrefix(what: string): string {
  return `${OWN_ROOT}${what}-${Date.now().toString(36)}-${++counter}/`
}

/** Deletes what this process wrote: its keys and the release records of its prefixes. */
export async function cleanUp(client: Etcd3): Promise<void> {
  await client.delete().prefix(OWN_ROOT).exec()
  await client
    .delete()
    .prefix(`/.backplane/releases/${encodeURIComponent(OWN_ROOT)}`)
    .exec()
}

/** Polls `check` until it returns true (or a value), failing after `timeoutMs` with `what`. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
