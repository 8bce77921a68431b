import { defineConfig } from 'vitest/config'

// Two projects told apart by file name: `*.integration.test.ts` needs the servers that
// scripts/services.sh starts (`npm test` does); every other test file needs none.
const integration = '**/*.integration.test.ts'
const typeTests = ['packages/*/test/**/*.test-d.ts']
const files = ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'test/**/*.test.ts']

export default defineConfig({
  resolve: { conditions: ['@backplane/source'] },
  ssr: { resolve: { conditions: ['@backplane/source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: files,
          exclude: [integration, '**/node_modules/**'],
          // Type tests of the public generics (`*.test-d.ts`): tsc checks them, nothing runs.
          typecheck: { enabled: true, include: typeTests, tsconfig: 'tsconfig.type-tests.json' },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: files.map((f) => f.replace('*.test.ts', '*.integration.test.ts')),
          // Integration files mostly wait on servers (group joins, timeouts, restarts): run two at
          // once even where vitest would run one (it uses cores - 1). Each file has its own topics,
          // prefixes and private servers. Three at once was faster still, but timing-sensitive
          // tests (1 s leases, breaker probes) then failed now and then on two cores.
          maxWorkers: 2,
          // A project with its own maxWorkers runs as its own group: after the unit files.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
