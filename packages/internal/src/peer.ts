/**
 * Optional peer dependencies (kafkajs, nats, etcd3, pg, better-sqlite3) are imported on first use.
 * Each package passes its own `import('name')` (a literal, so bundlers see it) and its own typed
 * error for a missing install.
 */
export function isModuleMissing(error: unknown, name?: string): boolean {
  const e = error as NodeJS.ErrnoException | undefined
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return false
  // A missing module deeper inside the peer is a broken install, not a missing peer.
  const message = String(e.message)
  return name === undefined || message.includes(`'${name}'`) || message.includes(`'${name}/`)
}

/**
 * Imports an optional peer and returns the module as imported (a CommonJS peer's API may sit on
 * `default`). `name` lists every package the import needs, when it needs several.
 */
export async function loadPeer<T>(
  name: string | readonly string[],
  importer: () => Promise<unknown>,
  onMissing: (cause: unknown) => Error,
): Promise<T> {
  try {
    const mod = (await importer()) as { default?: unknown }
    return mod as T
  } catch (error) {
    const names = typeof name === 'string' ? [name] : name
    if (names.some((n) => isModuleMissing(error, n))) throw onMissing(error)
    throw error
  }
}
