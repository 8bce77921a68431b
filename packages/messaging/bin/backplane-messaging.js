#!/usr/bin/env node
// npm links a package's bins when it installs it: in a clone of the repository that is before the
// build, and a bin pointing into dist/ would not be linked at all. So the bin is this file.
import { existsSync } from 'node:fs'

const cli = new URL('../dist/messaging-cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('backplane-messaging: this copy of the package is not built: run `npm run build` first\n')
  process.exit(1)
}
const { main } = await import(cli.href)
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr })
