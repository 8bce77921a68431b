import { defineConfig } from 'tsup'

// Kept trivial on purpose: the switch to tsdown should stay a one-file change. Adapters are
// their own entries, and createBroker loads them by package name, so they stay separate files.
export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      memory: 'src/adapters/memory.ts',
      kafka: 'src/adapters/kafka.ts',
      nats: 'src/adapters/nats.ts',
      bridge: 'src/bridge/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    external: [/^@backplane\/messaging(\/|$)/],
    // The adapters resolve their client's version from their own file: give the CJS build a file
    // URL for import.meta.url (esbuild empties import.meta in CJS).
    shims: true,
  },
  {
    // The backplane-bridge command (bin/backplane-bridge.js loads it): ESM only, no types.
    entry: { 'bridge-cli': 'src/bridge-cli.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    external: [/^@backplane\/messaging(\/|$)/],
  },
])
