#!/usr/bin/env node
// npm links a package's bins when it installs it: in a clone of the repository that is before the
// build, and a bin pointing into dist/ would not be linked at all. So the bin is this file.
import { existsSync } from 'node:fs'

const cli = new URL('../dist/bridge-cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('backplane-bridge: this copy of the package is not built: run `npm run build` first\n')
  process.exit(1)
}
await import(cli.href)
