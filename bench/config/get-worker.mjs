// `config.get('a.b.c')` cost in a fresh process: `node get-worker.mjs <client|convict|node-config> <iterations>`.
// Each library is set up with the same three-level value (42), checked to return it, warmed up,
// then timed over `iterations` calls summed into a checksum (so the loop cannot be optimised away).
// Prints one JSON line with ns/op of each of 3 repetitions.
import { mkdtempSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const [variant, iterationsArg] = process.argv.slice(2)
const ITERATIONS = Number(iterationsArg)
const require = createRequire(import.meta.url)

let get
let close = async () => {}
if (variant === 'client') {
  const { createConfig, memory } = await import('@backplane/config-client')
  const { z } = await import('zod')
  const Schema = z.object({ a: z.object({ b: z.object({ c: z.number() }) }), other: z.string().default('x') })
  const config = await createConfig({ schema: Schema, sources: [memory({ a: { b: { c: 42 } } })] })
  get = () => config.get('a.b.c')
  close = () => config.close()
} else if (variant === 'convict') {
  const convict = require('convict')
  const conf = convict({ a: { b: { c: { default: 0, format: Number } } }, other: { default: 'x', format: String } })
  conf.load({ a: { b: { c: 42 } } })
  conf.validate({ allowed: 'strict' })
  get = () => conf.get('a.b.c')
} else if (variant === 'node-config') {
  // node-config reads its directory at require time: an empty one, with the values in NODE_CONFIG.
  process.env.NODE_CONFIG_DIR = mkdtempSync(join(tmpdir(), 'bench-node-config-'))
  process.env.NODE_CONFIG = JSON.stringify({ a: { b: { c: 42 } }, other: 'x' })
  process.env.SUPPRESS_NO_CONFIG_WARNING = '1'
  const config = require('config')
  get = () => config.get('a.b.c')
} else {
  throw new Error(`unknown variant ${variant}`)
}

if (get() !== 42) throw new Error(`${variant}: get('a.b.c') returned ${get()}, expected 42`)

function run(n) {
  let sum = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) sum += get()
  const ns = Number(process.hrtime.bigint() - t0)
  if (sum !== 42 * n) throw new Error(`${variant}: checksum ${sum}, expected ${42 * n}`)
  return ns / n
}

run(Math.min(ITERATIONS, 200_000)) // warm-up: let the JIT settle
const nsPerOp = [run(ITERATIONS), run(ITERATIONS), run(ITERATIONS)]
await close()
process.stdout.write(`${JSON.stringify({ variant, nsPerOp })}\n`)
