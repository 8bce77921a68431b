import { rmSync } from 'node:fs'
import { defineConfig } from 'tsup'

// Cleaned once here, not with tsup's `clean`: each config cleans when its type build starts, which
// can delete the .d.ts files another config (the ESM-only testing entry) has just written.
rmSync(new URL('dist', import.meta.url), { recursive: true, force: true })

// tsup's type bundler finds a package's types through a top-level "types" field, which the
// source-only @backplane/internal has none of: point it at the source so the types are inlined.
const internalTypes = {
  resolve: ['@backplane/internal'],
  compilerOptions: { paths: { '@backplane/internal': ['../internal/src/index.ts'] } },
}

// Kept trivial on purpose: the switch to tsdown should stay a one-file change. Adapters are
// their own entries, and createBroker loads them by package name, so they stay separate files.
export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      memory: 'src/adapters/memory.ts',
      kafka: 'src/adapters/kafka/index.ts',
      nats: 'src/adapters/nats/index.ts',
      bridge: 'src/bridge/index.ts',
    },
    format: ['esm', 'cjs'],
    // @backplane/internal is private: bundle its code and inline its types, so users install nothing more.
    noExternal: ['@backplane/internal'],
    dts: internalTypes,
    sourcemap: true,
    target: 'node20',
    external: [/^@backplane\/messaging(\/|$)/],
    // The adapters resolve their client's version from their own file: give the CJS build a file
    // URL for import.meta.url (esbuild empties import.meta in CJS).
    shims: true,
  },
  {
    // ESM only: vitest, which the conformance suite calls, cannot be loaded with require(). It runs
    // inside the user's vitest, with the user's OpenTelemetry: optional peers, never bundled.
    entry: { testing: 'src/testing/index.ts' },
    format: ['esm'],
    noExternal: ['@backplane/internal'],
    dts: internalTypes,
    sourcemap: true,
    target: 'node20',
    external: [/^@backplane\/messaging(\/|$)/, 'vitest', '@opentelemetry/context-async-hooks', '@opentelemetry/core'],
  },
  {
    // The backplane-bridge and backplane-messaging commands (their bin/ files load them): ESM only, no types.
    entry: { 'bridge-cli': 'src/bridge-cli.ts', 'messaging-cli': 'src/cli.ts' },
    format: ['esm'],
    noExternal: ['@backplane/internal'],
    sourcemap: true,
    target: 'node20',
    external: [/^@backplane\/messaging(\/|$)/],
  },
])
