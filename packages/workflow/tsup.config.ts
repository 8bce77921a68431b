import { defineConfig } from 'tsup'

// Kept trivial on purpose: the switch to tsdown should stay a one-file change.
export default defineConfig([
  {
    entry: { index: 'src/index.ts', sqlite: 'src/stores/sqlite.ts', postgres: 'src/stores/postgres.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    external: ['better-sqlite3', 'pg'],
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    external: ['better-sqlite3', 'pg'],
  },
])
