/**
 * Runs every `bench/*.bench.ts` file in turn, each in its own process so one bench's warm JIT and heap
 * do not skew the next. Usage: `npm run bench`, or `npm run bench -- protocol` to run the files whose
 * name contains "protocol".
 */
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const directory = fileURLToPath(new URL(".", import.meta.url))
const filter = process.argv[2] ?? ""
const files = readdirSync(directory)
  .filter((name) => name.endsWith(".bench.ts") && name.includes(filter))
  .sort()

let failed = 0
for (const file of files) {
  console.log(`\n== ${file}`)
  const result = spawnSync(process.execPath, ["--import", "tsx", `${directory}${file}`], { stdio: "inherit" })
  if (result.status !== 0) {
    failed++
    console.error(`${file} exited with status ${result.status ?? result.signal}`)
  }
}
process.exitCode = failed === 0 ? 0 : 1
