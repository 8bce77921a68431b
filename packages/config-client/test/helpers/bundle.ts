/**
 * Bundles a TypeScript fixture for a child process that runs plain node, next to node_modules so
 * that etcd3 and zod resolve as they would in an app. Packages stay external, except the private
 * @backplane/internal: its exports point at TypeScript sources, which plain node cannot load (the
 * published build bundles it too).
 */
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('../../../../', import.meta.url))

/** Bundles `test/fixtures/<name>.ts`; returns the bundle's directory (remove it after) and script. */
export async function bundleFixture(name: string): Promise<{ dir: string; script: string }> {
  mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true })
  const dir = mkdtempSync(join(root, 'node_modules', '.cache', `config-client-${name}-`))
  const script = join(dir, `${name}.mjs`)
  await build({
    entryPoints: [fileURLToPath(new URL(`../fixtures/${name}.ts`, import.meta.url))],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [
      {
        name: 'external-packages-but-internal',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@backplane/internal') ? undefined : { path: args.path, external: true },
          )
        },
      },
    ],
    logLevel: 'silent',
  })
  return { dir, script }
}
