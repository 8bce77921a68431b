import { defineConfig } from 'tsup'

// Kept trivial on purpose: the switch to tsdown should stay a one-file change.
export default defineConfig([
  {
    entry: { index: 'src/index.ts', etcd: 'src/etcd/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
  },
  {
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
  },
])
