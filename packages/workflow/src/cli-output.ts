/** How the CLI prints: aligned tables, and list commands as a table or, with --json, as JSON. */

/** Rows as columns two spaces apart, the first row the header; no trailing spaces. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? []
  const lines = rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  )
  return `${lines.join('\n')}\n`
}

/** A list command's output: `items` as JSON, else the line `empty` when there are none, else a table. */
export async function writeList<T>(
  write: (text: string) => Promise<void>,
  json: boolean,
  items: readonly T[],
  empty: string,
  header: string[],
  row: (item: T) => string[],
): Promise<void> {
  if (json) await write(`${JSON.stringify(items, null, 2)}\n`)
  else if (items.length === 0) await write(`${empty}\n`)
  else await write(table([header, ...items.map(row)]))
}
