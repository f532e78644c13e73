// Prints "tests: N passed, N failed" from vitest JSON reports, and exits 1 when a report is
// missing or records a failure, so a crashed run cannot pass as an empty one.
import { existsSync, readFileSync } from "node:fs"

let passed = 0
let failed = 0
let missing = 0
for (const path of process.argv.slice(2)) {
  if (!existsSync(path)) {
    console.error(`test report not found: ${path} (the runner crashed before writing it)`)
    missing += 1
    continue
  }
  const report = JSON.parse(readFileSync(path, "utf8"))
  passed += report.numPassedTests
  failed += report.numFailedTests
  // A file that fails to load is a failed suite with no test counted in numFailedTests.
  failed += report.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0).length
}
console.log(`tests: ${passed} passed, ${failed} failed`)
process.exit(failed > 0 || missing > 0 || passed === 0 ? 1 : 0)
