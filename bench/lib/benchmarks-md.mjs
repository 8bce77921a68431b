// Writes one benchmark's section of BENCHMARKS.md, shared by every bench/<name>/run.mjs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCHMARKS_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'BENCHMARKS.md')

const DOC_HEADER = `# Benchmarks

Run \`npm run bench -- <name>\` at the repo root (\`npm run bench\` lists the names). Each \`## <name>\`
section below is produced by its command, which replaces it on every run: don't edit it by hand.
Figures are from one machine and one run; compare rows within a section, not across sections.
`

/** Replaces `## <name>` (up to the next `## ` heading) in the file, or appends it; keeps the rest. */
export function writeSection(file, name, section) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : DOC_HEADER
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.trim() === `## ${name}`)
  let out
  if (start === -1) {
    out = `${text.replace(/\n*$/, '')}\n\n${section.trimEnd()}\n`
  } else {
    let end = lines.findIndex((l, k) => k > start && /^## /.test(l))
    if (end === -1) end = lines.length
    const before = lines.slice(0, start).join('\n').replace(/\n*$/, '')
    const after = lines.slice(end).join('\n')
    out = `${before}\n\n${section.trimEnd()}\n${after ? `\n${after.replace(/\n*$/, '')}\n` : ''}`
  }
  writeFileSync(file, out)
}

/**
 * Prints the section, and writes it into BENCHMARKS.md only for a run with the default settings
 * (a quick run with overrides must not replace the recorded figures); `overrides` names them.
 */
export function publishSection(name, section, { isDefaultRun, overrides }) {
  process.stdout.write(`\n${section}\n`)
  if (!isDefaultRun) {
    process.stdout.write(`\n(${overrides} overridden: BENCHMARKS.md left as it is)\n`)
    return
  }
  writeSection(BENCHMARKS_FILE, name, section)
  process.stdout.write(`\nwrote the ## ${name} section of BENCHMARKS.md\n`)
}
