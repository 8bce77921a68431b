import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['@backplane/source'] },
  ssr: { resolve: { conditions: ['@backplane/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
