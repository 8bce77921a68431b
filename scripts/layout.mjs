#!/usr/bin/env node
// Checks the source layout the codebase keeps: no import cycle among a package's modules (type
// imports included: two files that need each other cannot be read alone), and no source file over
// MAX_LINES unless it is listed below with the reason it is still one concept.
// Usage: node scripts/layout.mjs [--json]   (exit status 1 when a rule is broken)
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MAX_LINES = 450

/** Files allowed past MAX_LINES, each one concept too big to cut without making it harder to read. */
export const LONG_FILES = {
  'packages/workflow/src/transition.ts': 'the pure transition function: one decision table, read top to bottom',
  'packages/workflow/src/stores/postgres.ts': 'one Store implementation: its SQL and the statements that use it',
  'packages/workflow/src/stores/sqlite.ts': 'one Store implementation: its SQL and the statements that use it',
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function sourceFiles(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path))
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** Relative imports of a file: static `import`/`export ... from`, and `import('...')` types. */
function relativeImports(file, source) {
  const specs = [...source.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g)].map((m) => m[1])
  for (const m of source.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) specs.push(m[1])
  return specs.map((spec) => {
    const base = resolve(dirname(file), spec.replace(/\.js$/, ''))
    return [`${base}.ts`, join(base, 'index.ts')]
  })
}

export function checkLayout(root = repoRoot) {
  const packages = readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'src'))
  const cycles = []
  const long = []
  for (const src of packages) {
    const files = sourceFiles(src)
    const known = new Set(files)
    const graph = new Map()
    for (const file of files) {
      const source = readFileSync(file, 'utf8')
      const lines = source.split('\n').length - 1
      const name = relative(root, file)
      if (lines > MAX_LINES && !(name in LONG_FILES)) long.push({ file: name, lines })
      graph.set(
        file,
        relativeImports(file, source).flatMap((candidates) => candidates.filter((c) => known.has(c)).slice(0, 1)),
      )
    }
    const state = new Map()
    const stack = []
    const visit = (file) => {
      state.set(file, 'open')
      stack.push(file)
      for (const dep of graph.get(file)) {
        if (state.get(dep) === 'open')
          cycles.push([...stack.slice(stack.indexOf(dep)), dep].map((f) => relative(root, f)))
        else if (!state.has(dep)) visit(dep)
      }
      stack.pop()
      state.set(file, 'done')
    }
    for (const file of files) if (!state.has(file)) visit(file)
  }
  return { cycles, long }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { cycles, long } = checkLayout()
  if (process.argv.includes('--json')) console.log(JSON.stringify({ cycles, long }, null, 2))
  else {
    for (const cycle of cycles) console.log(`import cycle: ${cycle.join(' -> ')}`)
    for (const { file, lines } of long)
      console.log(
        `${file}: ${lines} lines (over ${MAX_LINES}; split it or list it in scripts/layout.mjs with the reason)`,
      )
    console.log(`${cycles.length} import cycles, ${long.length} files over ${MAX_LINES} lines`)
  }
  process.exitCode = cycles.length + long.length > 0 ? 1 : 0
}
