const warned = new Set<string>()

/**
 * Emits a DeprecationWarning once per process per code (Node prints it once to stderr unless
 * --no-deprecation; apps can listen on process 'warning').
 */
export function deprecate(code: string, message: string): void {
  if (warned.has(code)) return
  warned.add(code)
  process.emitWarning(message, { type: 'DeprecationWarning', code })
}

/**
 * Moves old option names to their new ones before parsing, with a one-time warning each. The
 * old value is used only when the new name is absent. `convert` adapts the old value's form.
 */
export function renameOptions<T>(
  input: T,
  renames: readonly { from: string; to: string; convert?: (value: unknown) => unknown }[],
  where: string,
  code: string,
): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input
  let out: Record<string, unknown> | undefined
  for (const { from, to, convert } of renames) {
    if (!Object.hasOwn(input, from)) continue
    out ??= { ...(input as Record<string, unknown>) }
    const value = out[from]
    delete out[from]
    if (out[to] === undefined) out[to] = convert ? convert(value) : value
    deprecate(
      `${code}:${where}.${from}`,
      `${where}: option "${from}" is deprecated, use "${to}" (same meaning; it also accepts a duration string like "30s")`,
    )
  }
  return (out ?? input) as T
}
