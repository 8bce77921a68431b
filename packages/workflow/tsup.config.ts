import { rmSync } from 'node:fs'
import { defineConfig } from 'tsup'

// Cleaned once here, not with tsup's `clean`: each config cleans when its type build starts, which
// can delete the .d.ts files another config (the ESM-only testing entry) has just written.
rmSync(new URL('dist', import.meta.url), { recursive: true, force: true })

// @backplane/internal is private: every entry bundles its code and inlines its types, so users install
// nothing more. tsup's type bundler finds a package's types through a top-level "types" field, which
// the source-only package has none of: `paths` points it at the source.
const internalTypes = {
  resolve: ['@backplane/internal'],
  compilerOptions: { paths: { '@backplane/internal': ['../internal/src/index.ts'] } },
}

// Kept trivial on purpose: the switch to tsdown should stay a one-file change.
export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      store: 'src/store-api.ts',
      sqlite: 'src/stores/sqlite.ts',
      postgres: 'src/stores/postgres.ts',
      ui: 'src/ui/index.ts',
    },
    format: ['esm', 'cjs'],
    // The inspector finds its page (ui/) from import.meta.url: the shim gives the CJS build one.
    shims: true,
    noExternal: ['@backplane/internal'],
    dts: internalTypes,
    sourcemap: true,
    target: 'node20',
    external: ['better-sqlite3', 'pg'],
  },
  {
    // ESM only: vitest, which the conformance suite calls, cannot be loaded with require().
    entry: { testing: 'src/testing/index.ts' },
    format: ['esm'],
    noExternal: ['@backplane/internal'],
    dts: internalTypes,
    sourcemap: true,
    target: 'node20',
    external: ['better-sqlite3', 'pg', 'vitest'],
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    noExternal: ['@backplane/internal'],
    sourcemap: true,
    target: 'node20',
    external: ['better-sqlite3', 'pg'],
  },
])
