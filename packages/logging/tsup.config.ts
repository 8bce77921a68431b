import { defineConfig } from 'tsup'

// Kept trivial on purpose: the switch to tsdown should stay a one-file change.
export default defineConfig([
  {
    entry: ['src/index.ts', 'src/trace-context.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
  },
  {
    entry: ['src/cli.ts'],
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
  },
])
