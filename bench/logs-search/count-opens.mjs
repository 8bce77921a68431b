// Preloaded (`node --import`) into one untimed backplane-logs run to count the files it opens:
// the proof that a time-range query leaves the others closed. Prints `opened <n>` on stderr.
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

let opened = 0
const createReadStream = fs.createReadStream
fs.createReadStream = function countedCreateReadStream(...args) {
  opened++
  return createReadStream.apply(this, args)
}
syncBuiltinESMExports()
process.on('exit', () => process.stderr.write(`opened ${opened}\n`))
