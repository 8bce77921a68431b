import { defineConfig } from 'tsup'

// Kept trivial on purpose: the switch to tsdown should stay a one-file change.
export default defineConfig([
  {
    entry: ['src/index.ts', 'src/trace-context.ts'],
    format: ['esm', 'cjs'],
    // @backplane/internal is private: bundle its code and inline its types, so users install nothing more.
    noExternal: ['@backplane/internal'],
    // tsup's type bundler finds a package's types through a top-level "types" field, which a
    // source-only package has none of: point it at the source so the types are inlined.
    dts: {
      resolve: ['@backplane/internal'],
      compilerOptions: { paths: { '@backplane/internal': ['../internal/src/index.ts'] } },
    },
    // import.meta.url in the CommonJS build (the optional Logs API peer is required from here).
    shims: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    noExternal: ['@backplane/internal'],
    sourcemap: true,
    target: 'node20',
  },
])
