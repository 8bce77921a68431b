// Prints every failed test of the vitest JSON reports given, with the first lines of its error,
// so the end of a CI log (often all that is kept) says what failed.
import { readFileSync } from 'node:fs'

let shown = 0
for (const file of process.argv.slice(2)) {
  let report
  try {
    report = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    console.log(`::: ${file}: no report`)
    continue
  }
  for (const suite of report.testResults ?? []) {
    const failures = (suite.assertionResults ?? []).filter((t) => t.status === 'failed')
    if (suite.status === 'failed' && failures.length === 0) {
      console.log(`::: FAILED (file) ${suite.name} [${file}]`)
      console.log(indent(suite.message ?? ''))
      shown++
    }
    for (const t of failures) {
      console.log(`::: FAILED ${suite.name} > ${t.fullName} [${file}]`)
      console.log(indent((t.failureMessages ?? []).join('\n')))
      shown++
    }
  }
}
if (shown === 0) console.log('::: no failed tests in the reports')

function indent(text) {
  return text
    .split('\n')
    .slice(0, 12)
    .map((line) => `    ${line}`)
    .join('\n')
}
