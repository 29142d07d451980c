// Reads vitest's JSON report and prints the plain closing line CI reads. A failed typecheck or
// build (no report) counts as one failure; a non-zero exit with no failed test counts as one too.
// Further arguments `name=exitCode` are checks run outside vitest (e.g. `lint:package=0`): each
// counts as one passed or one failed test.
import { existsSync, readFileSync } from 'node:fs'

const [file, statusText, ...checks] = process.argv.slice(2)
const status = Number(statusText)
let passed = 0
let failed = 0
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, 'utf8'))
  passed = report.numPassedTests
  failed = report.numFailedTests
  const skipped = report.numPendingTests + (report.numTodoTests ?? 0)
  if (skipped > 0) console.log(`note: ${skipped} tests were skipped`)
}
if (status !== 0 && failed === 0) failed = 1
let checksFailed = 0
for (const check of checks) {
  const at = check.lastIndexOf('=')
  const name = check.slice(0, at)
  const code = Number(check.slice(at + 1))
  if (at > 0 && code === 0) passed++
  else {
    checksFailed++
    console.log(`note: ${at > 0 ? name : check} failed`)
  }
}
failed += checksFailed
console.log(`${passed} passed, ${failed} failed`)
process.exit(status !== 0 || failed > 0 || passed === 0 ? 1 : 0)
