/**
 * Helpers shared by the virtualenvs this repository builds: the real brain's (interop/venv.ts) and the
 * reference agent's (bench/py/venv.ts). Each is built once per pinned version in a cache folder outside
 * the repository, under a lock folder so that concurrent runs never build into the same path at once.
 */
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"

/** Folder for caches that outlive a run: `$XDG_CACHE_HOME/z4j-agent`, else `~/.cache/z4j-agent`. */
export const cacheRoot = (): string => join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "z4j-agent")

// The brain's build installs about 80 packages; a lock older than this belongs to a run that died
// without cleanup.
const staleLockMillis = 20 * 60_000
const lockWaitMillis = 25 * 60_000

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const lockOwnerIsGone = (lockPath: string): boolean => {
  try {
    const pid = Number(readFileSync(join(lockPath, "pid"), "utf8"))
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) return true
    return Date.now() - statSync(lockPath).mtimeMs > staleLockMillis
  } catch {
    // The owner has created the folder but not yet written its pid, or has just released the lock.
    return false
  }
}

/** Runs `body` while holding the lock folder `lockPath`. `mkdir` is atomic, so one run holds it at a time. */
export const withLock = async <A>(lockPath: string, body: () => Promise<A>): Promise<A> => {
  const deadline = Date.now() + lockWaitMillis
  for (;;) {
    try {
      mkdirSync(lockPath)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
    }
    if (lockOwnerIsGone(lockPath)) {
      rmSync(lockPath, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${lockWaitMillis / 60_000} min waiting for another run to finish building a virtualenv; remove ${lockPath} if no such run exists`
      )
    }
    await sleep(1000)
  }
  try {
    writeFileSync(join(lockPath, "pid"), String(process.pid))
    return await body()
  } finally {
    rmSync(lockPath, { recursive: true, force: true })
  }
}

/** Runs a command, appends its output to `logPath`, and kills it after `timeoutMillis`. */
export const runLogged = (command: string, args: ReadonlyArray<string>, logPath: string, timeoutMillis: number) =>
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

// pip's wording for a package index it cannot reach (DNS failure, refused connection, proxy, TLS).
export const networkFailure =
  /Failed to establish a new connection|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|ProxyError|SSLError|Read timed out|ConnectTimeoutError/
