/** pino's default level numbers by label. */
export const LOG_LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
}

export function levelNumber(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (/^\d+$/.test(value)) return Number(value)
  return LOG_LEVELS[value.toLowerCase()]
}
