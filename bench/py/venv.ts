/**
 * The Python virtualenv holding the reference agent, z4j-bare, for the side-by-side benchmarks and the
 * interop check: built once per pinned version in `~/.cache/z4j-agent/bare-<version>` (or under
 * `$XDG_CACHE_HOME`), guarded by a lock folder so two runs never build into the same path at once.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"

/** The pinned z4j-bare release; this is the one place it is written. */
export const bareVersion = "1.13.0"
/** z4j-bare 1.13.0 requires z4j-core of the same release. */
export const bareCoreVersion = "1.13.0"

const pins = [`z4j-bare==${bareVersion}`, `z4j-core==${bareCoreVersion}`]

/** Folder for caches that outlive a run. */
export const cacheRoot = (): string => join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "z4j-agent")

/** The virtualenv folder for the current pins. */
export const bareVenvPath = (): string => join(cacheRoot(), `bare-${bareVersion}`)

/** The interpreter inside the virtualenv. */
export const barePython = (): string => join(bareVenvPath(), "bin", "python")

// Written last by a build, so a folder without it (a killed build) is never used.
const markerName = "z4j-agent-pins.txt"
const staleLockMillis = 10 * 60_000

/**
 * Raised when pip cannot reach its package index, so callers can skip rather than fail.
 */
export class IndexUnreachable extends Error {
  readonly _tag = "IndexUnreachable"
}

const networkFailure =
  /Failed to establish a new connection|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|ProxyError|SSLError|Read timed out|ConnectTimeoutError|No matching distribution found/

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const run = (command: string, args: ReadonlyArray<string>, logPath: string, timeoutMillis: number) =>
  new Promise<{ readonly code: number | null; readonly output: string }>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    const chunks: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMillis)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      const output = Buffer.concat(chunks).toString("utf8")
      writeFileSync(logPath, output, { flag: "a" })
      resolve({ code, output })
    })
  })

const lockIsStale = (lockPath: string): boolean => {
  try {
    const pid = Number(readFileSync(join(lockPath, "pid"), "utf8"))
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EPERM") return true
      }
    }
    return Date.now() - statSync(lockPath).mtimeMs > staleLockMillis
  } catch {
    return false
  }
}

const build = async (venv: string, logPath: string): Promise<void> => {
  rmSync(venv, { recursive: true, force: true })
  const created = await run("python3", ["-m", "venv", venv], logPath, 120_000)
  if (created.code !== 0) {
    throw new Error(`python3 -m venv ${venv} failed; install python3-venv (Python 3.11 or newer). See ${logPath}`)
  }
  // Short retries and timeouts make an unreachable index fail in under a minute.
  const installed = await run(
    join(venv, "bin", "python"),
    ["-m", "pip", "install", "--disable-pip-version-check", "--retries", "2", "--timeout", "20", ...pins],
    logPath,
    10 * 60_000
  )
  if (installed.code !== 0) {
    rmSync(venv, { recursive: true, force: true })
    if (networkFailure.test(installed.output)) {
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
  const deadline = Date.now() + 15 * 60_000
  for (;;) {
    try {
      mkdirSync(lockPath)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
    if (lockIsStale(lockPath)) {
      rmSync(lockPath, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockPath}; remove it if no build is running`)
    await sleep(1000)
  }
  try {
    writeFileSync(join(lockPath, "pid"), String(process.pid))
    if (!isComplete()) {
      writeFileSync(logPath, `building ${venv} with ${pins.join(" ")}\n`)
      await build(venv, logPath)
    }
  } finally {
    rmSync(lockPath, { recursive: true, force: true })
  }
  return venv
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await ensureBareVenv())
}
