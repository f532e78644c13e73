/**
 * The Python virtualenv holding the reference agent, z4j-bare, for the side-by-side benchmarks and the
 * interop check: built once per pinned version in `~/.cache/z4j-agent/bare-<version>` (or under
 * `$XDG_CACHE_HOME`), guarded by a lock folder so two runs never build into the same path at once.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { cacheRoot, networkFailure, runLogged, withLock } from "../../interop/pythonTools.js"

/** The pinned z4j-bare release; this is the one place it is written. */
export const bareVersion = "1.13.0"
/** z4j-bare 1.13.0 requires z4j-core of the same release. */
export const bareCoreVersion = "1.13.0"

const pins = [`z4j-bare==${bareVersion}`, `z4j-core==${bareCoreVersion}`]

/** The virtualenv folder for the current pins. */
export const bareVenvPath = (): string => join(cacheRoot(), `bare-${bareVersion}`)

/** The interpreter inside the virtualenv. */
export const barePython = (): string => join(bareVenvPath(), "bin", "python")

// Written last by a build, so a folder without it (a killed build) is never used.
const markerName = "z4j-agent-pins.txt"

/**
 * Raised when pip cannot reach its package index, so callers can skip rather than fail.
 */
export class IndexUnreachable extends Error {
  readonly _tag = "IndexUnreachable"
}

// pip cannot reach the index, or the index (a mirror, say) lacks the pinned release.
const indexUnreachable = (output: string) =>
  networkFailure.test(output) || output.includes("No matching distribution found")

const build = async (venv: string, logPath: string): Promise<void> => {
  rmSync(venv, { recursive: true, force: true })
  const created = await runLogged("python3", ["-m", "venv", venv], logPath, 120_000)
  if (created.code !== 0) {
    throw new Error(`python3 -m venv ${venv} failed; install python3-venv (Python 3.11 or newer). See ${logPath}`)
  }
  // Short retries and timeouts make an unreachable index fail in under a minute.
  const installed = await runLogged(
    join(venv, "bin", "python"),
    ["-m", "pip", "install", "--disable-pip-version-check", "--retries", "2", "--timeout", "20", ...pins],
    logPath,
    10 * 60_000
  )
  if (installed.code !== 0) {
    rmSync(venv, { recursive: true, force: true })
    if (indexUnreachable(installed.output)) {
      throw new IndexUnreachable(
        `cannot install ${pins.join(" ")}: the package index (PyPI, or PIP_INDEX_URL when set) is unreachable; pip's output is in ${logPath}`
      )
    }
    throw new Error(`pip install ${pins.join(" ")} failed (exit ${installed.code}); pip's output is in ${logPath}`)
  }
  writeFileSync(join(venv, markerName), pins.join("\n"))
}

/**
 * Returns the path of a virtualenv holding exactly the pinned z4j-bare and z4j-core, building it when
 * it is missing or holds other versions. Rejects with {@link IndexUnreachable} when PyPI cannot be reached.
 */
export const ensureBareVenv = async (): Promise<string> => {
  const venv = bareVenvPath()
  const marker = join(venv, markerName)
  const isComplete = () => existsSync(marker) && readFileSync(marker, "utf8") === pins.join("\n")
  if (isComplete()) return venv
  mkdirSync(cacheRoot(), { recursive: true })
  const lockPath = `${venv}.lock`
  const logPath = join(cacheRoot(), `install-bare-${bareVersion}.log`)
  await withLock(lockPath, async () => {
    if (isComplete()) return
    writeFileSync(logPath, `building ${venv} with ${pins.join(" ")}\n`)
    await build(venv, logPath)
  })
  return venv
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await ensureBareVenv())
}
