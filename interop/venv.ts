/**
 * The Python virtualenv the interop brain runs from. It is built once per pinned version in a cache
 * folder outside the repository and reused by every later run on the same machine. A lock folder keeps
 * concurrent runs from building into the same path at once.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { cacheRoot, networkFailure, runLogged, withLock } from "./pythonTools.js"

interface BrainVersionFile {
  readonly python: string
  readonly packages: Readonly<Record<string, string>>
}

const versionFile = join(dirname(fileURLToPath(import.meta.url)), "brain-version.json")
const versions = JSON.parse(readFileSync(versionFile, "utf8")) as BrainVersionFile

/** The pinned `z4j` version; interop/brain-version.json is the one place it is written. */
export const brainVersion: string = versions.packages.z4j ?? ""
/** The pinned `z4j-core` version. The brain's frame signing and verification come from this package. */
export const coreVersion: string = versions.packages["z4j-core"] ?? ""

/** `name==version` for every pinned package, in the order pip gets them. */
export const pins: ReadonlyArray<string> = Object.entries(versions.packages).map(
  ([name, version]) => `${name}==${version}`
)

/** The virtualenv folder for the current pins. */
export const venvPath = (): string =>
  join(
    cacheRoot(),
    coreVersion === brainVersion ? `brain-${brainVersion}` : `brain-${brainVersion}-core-${coreVersion}`
  )

// Written last by a build, so a folder without it (a build that was killed) is never used.
const markerName = "z4j-agent-pins.txt"
/** Reads the installed versions of the pinned packages, or null when the interpreter cannot run. */
const installedPins = async (venv: string, logPath: string): Promise<string | null> => {
  const names = Object.keys(versions.packages)
  const script = `import importlib.metadata as m\nfor n in ${JSON.stringify(names)}: print(f"{n}=={m.version(n)}")`
  try {
    const result = await runLogged(join(venv, "bin", "python"), ["-c", script], logPath, 60_000)
    return result.code === 0 ? result.output.trim() : null
  } catch {
    return null
  }
}

const build = async (venv: string, logPath: string): Promise<void> => {
  rmSync(venv, { recursive: true, force: true })
  let created: { readonly code: number | null; readonly output: string }
  try {
    created = await runLogged("python3", ["-m", "venv", venv], logPath, 120_000)
  } catch (error) {
    throw new Error(`python3 was not found (${String(error)}); install Python 3.11 or newer with its venv module`)
  }
  if (created.code !== 0) {
    throw new Error(
      `python3 -m venv ${venv} failed; install python3-venv (Python 3.11 or newer). Output: ${created.output.slice(-1500)}`
    )
  }
  // Retries and timeouts are short so an unreachable index fails in under a minute, not after pip's
  // default of five retries of 15 s each per request.
  const installed = await runLogged(
    join(venv, "bin", "python"),
    ["-m", "pip", "install", "--disable-pip-version-check", "--retries", "2", "--timeout", "20", ...pins],
    logPath,
    15 * 60_000
  )
  if (installed.code !== 0) {
    rmSync(venv, { recursive: true, force: true })
    const cause = networkFailure.test(installed.output)
      ? "the package index (PyPI, or PIP_INDEX_URL when set) is unreachable from this machine; allow HTTPS to pypi.org and files.pythonhosted.org or point PIP_INDEX_URL at a mirror"
      : `pip install ${pins.join(" ")} failed (exit ${installed.code})`
    throw new Error(`cannot install the real brain: ${cause}. pip's output is in ${logPath}`)
  }
  writeFileSync(join(venv, markerName), pins.join("\n"))
}

/**
 * Returns the path of a virtualenv that contains exactly the pinned packages, building it first when it
 * is missing, incomplete or contains other versions. A build takes the lock, so a concurrent run waits
 * and then reuses the result. pip's output goes to `install-<version>.log` in the cache folder.
 */
export const ensureVenv = async (): Promise<string> => {
  const venv = venvPath()
  const logPath = join(cacheRoot(), `install-${brainVersion}.log`)
  const marker = join(venv, markerName)
  const isComplete = () => existsSync(marker) && readFileSync(marker, "utf8") === pins.join("\n")
  if (isComplete()) return venv
  mkdirSync(cacheRoot(), { recursive: true })
  await withLock(`${venv}.lock`, async () => {
    if (isComplete() && (await installedPins(venv, logPath)) === pins.join("\n")) return
    writeFileSync(logPath, `building ${venv} with ${pins.join(" ")}\n`)
    await build(venv, logPath)
  })
  return venv
}
