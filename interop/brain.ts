/**
 * Runs the real z4j brain (the Python package `z4j`) on 127.0.0.1 for interop tests: the pinned
 * virtualenv, a fresh state folder, a scrubbed environment, headless admin bootstrap, a cookie session
 * for REST, and agents minted through the API.
 *
 * Run directly (`npx tsx interop/brain.ts`) it starts a brain, writes the first agent's credentials to a
 * file readable only by the owner, prints where everything is, and stops the brain on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { login, type MintedAgent, mintAgent, RestClient, type Session } from "./rest.js"
import { brainVersion, coreVersion, ensureVenv } from "./venv.js"

export type { MintedAgent } from "./rest.js"
export { brainVersion, coreVersion } from "./venv.js"

const adminEmail = "admin@example.com"
// Meets the brain's password policy: 12 or more characters, and three character classes under 16.
const adminPassword = "Interop-Admin-Pass-2026!"
const readyTimeoutMillis = 90_000
const stopTimeoutMillis = 15_000

/** Addresses and credentials of a running brain, as plain data because vitest `provide` serializes it. */
export interface BrainCredentials {
  readonly baseUrl: string
  /** The agent WebSocket endpoint, `ws://127.0.0.1:<port>/ws/agent`. */
  readonly wsUrl: string
  readonly port: number
  readonly slug: string
  readonly projectId: string
  /** The first agent, created at start and never connected by the harness. */
  readonly agentId: string
  readonly token: string
  readonly hmacSecret: string
  readonly session: Session
  readonly logPath: string
}

/** A brain started by {@link startBrain}. */
export interface RunningBrain extends BrainCredentials {
  readonly home: string
  readonly agent: MintedAgent
  /** The REST client of the current session; a restart replaces it. */
  readonly rest: RestClient
  readonly mintAgent: (name: string) => Promise<MintedAgent>
  /** Options for `Z4j.layer` that connect to this brain as `agent` (default: the first agent). */
  readonly agentOptions: (agent?: MintedAgent) => AgentConnectionOptions
  /** Stops the brain process and starts it again on the same state folder and port. */
  readonly restart: () => Promise<void>
  /** Stops the brain process but keeps its state folder, for outage tests; see `startProcess`. */
  readonly stopProcess: () => Promise<void>
  /** Starts the brain process again after `stopProcess`, and logs in again. */
  readonly startProcess: () => Promise<void>
  /** Stops the brain and deletes its state folder. The log file is kept. */
  readonly stop: () => Promise<void>
}

/** The connection fields of the agent's options. */
export interface AgentConnectionOptions {
  readonly brainUrl: string
  readonly token: string
  readonly hmacSecret: string
  readonly projectId: string
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const tail = (path: string, characters = 3000) => {
  try {
    return readFileSync(path, "utf8").slice(-characters)
  } catch {
    return "(no log)"
  }
}

// Starts the CLI in a Python process that requests SIGTERM from the kernel when its parent dies
// (PR_SET_PDEATHSIG, Linux only), so a killed test run leaves no brain behind. Elsewhere only the exit
// hook below stops it.
const launcher = [
  "import ctypes, signal, sys",
  "try:",
  "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))",
  "except (AttributeError, OSError):",
  "    pass",
  "from z4j_brain.cli import main",
  "sys.argv[0] = 'z4j'",
  "sys.exit(main())"
].join("\n")

/** Brain processes still running in this process, killed if Node exits without stopping them. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL")
  })
}

const logFolder = () => {
  const folder = join(tmpdir(), "z4j-interop-logs")
  mkdirSync(folder, { recursive: true })
  return folder
}

/**
 * Starts the pinned brain on a free loopback port with a fresh state folder, logs in as the bootstrap
 * admin and creates one agent. The brain's output goes to a log file outside the state folder, named in
 * every error.
 */
export const startBrain = async (): Promise<RunningBrain> => {
  const venv = await ensureVenv()
  const port = await freePort()
  const home = mkdtempSync(join(tmpdir(), "z4j-brain-"))
  const logPath = join(logFolder(), `brain-${brainVersion}-${port}-${Date.now()}.log`)
  const baseUrl = `http://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  installExitHook()

  const startProcess = async () => {
    const log = openSync(logPath, "a")
    const started = spawn(
      join(venv, "bin", "python"),
      [
        "-c",
        launcher,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--workers",
        "1",
        "--environment",
        "dev"
      ],
      {
        cwd: home,
        // The brain reads every Z4J_* variable and ./.env. Agent settings in the test's environment would
        // change its mode or secrets, so only these variables reach it.
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: home,
          Z4J_HOME: home,
          Z4J_LOG_JSON: "false",
          Z4J_BOOTSTRAP_ADMIN_EMAIL: adminEmail,
          Z4J_BOOTSTRAP_ADMIN_PASSWORD: adminPassword
        },
        stdio: ["ignore", log, log]
      }
    )
    child = started
    running.add(started)
    const exited = new Promise<number | null>((resolve) =>
      started.once("exit", (code) => {
        running.delete(started)
        resolve(code)
      })
    )
    const deadline = Date.now() + readyTimeoutMillis
    while (Date.now() < deadline) {
      const code = await Promise.race([exited, sleep(250).then(() => undefined)])
      if (code !== undefined) {
        throw new Error(`the brain exited with code ${code} while starting; its log is ${logPath}:\n${tail(logPath)}`)
      }
      try {
        const response = await fetch(`${baseUrl}/api/v1/health/ready`)
        if (response.status === 200) return
      } catch {
        // Not listening yet.
      }
    }
    await stopProcess()
    throw new Error(
      `the brain was not ready within ${readyTimeoutMillis / 1000} s; its log is ${logPath}:\n${tail(logPath)}`
    )
  }

  const stopProcess = async () => {
    const current = child
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
    const exited = new Promise<void>((resolve) => current.once("exit", () => resolve()))
    current.kill("SIGTERM")
    const stopped = await Promise.race([exited.then(() => true), sleep(stopTimeoutMillis).then(() => false)])
    if (!stopped) {
      current.kill("SIGKILL")
      await exited
    }
  }

  let session: Session
  let rest: RestClient
  const signIn = async () => {
    session = await login(baseUrl, adminEmail, adminPassword)
    rest = new RestClient(baseUrl, "default", session)
  }

  let agent: MintedAgent
  try {
    await startProcess()
    await signIn()
    agent = await mintAgent(rest!, "ts-interop-1")
  } catch (error) {
    await stopProcess()
    rmSync(home, { recursive: true, force: true })
    throw error
  }

  return {
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws/agent`,
    port,
    home,
    logPath,
    slug: "default",
    projectId: agent.projectId,
    agentId: agent.agentId,
    token: agent.token,
    hmacSecret: agent.hmacSecret,
    agent,
    get session() {
      return session
    },
    get rest() {
      return rest
    },
    mintAgent: (name) => mintAgent(rest, name),
    agentOptions: (which = agent) => ({
      brainUrl: baseUrl,
      token: which.token,
      hmacSecret: which.hmacSecret,
      projectId: which.projectId
    }),
    restart: async () => {
      await stopProcess()
      await startProcess()
      await signIn()
    },
    stopProcess,
    startProcess: async () => {
      await startProcess()
      await signIn()
    },
    stop: async () => {
      await stopProcess()
      rmSync(home, { recursive: true, force: true })
    }
  }
}

/** The plain-data part of a running brain, for vitest `provide`. */
export const credentialsOf = (brain: RunningBrain): BrainCredentials => ({
  baseUrl: brain.baseUrl,
  wsUrl: brain.wsUrl,
  port: brain.port,
  slug: brain.slug,
  projectId: brain.projectId,
  agentId: brain.agentId,
  token: brain.token,
  hmacSecret: brain.hmacSecret,
  session: brain.session,
  logPath: brain.logPath
})

/** Polls `probe` every 250 ms until it returns a value other than undefined or false. */
export const eventually = async <A>(
  label: string,
  probe: () => Promise<A | undefined | false>,
  timeoutMillis = 30_000
): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    await sleep(250)
  }
  throw new Error(`timed out after ${timeoutMillis} ms waiting for ${label}${last ? `: ${String(last)}` : ""}`)
}

const main = async () => {
  const started = Date.now()
  const brain = await startBrain()
  const credentialsPath = join(brain.home, "agent.json")
  writeFileSync(credentialsPath, JSON.stringify(credentialsOf(brain), null, 2), { mode: 0o600 })
  process.stdout.write(
    [
      `z4j ${brainVersion} (z4j-core ${coreVersion}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      `  REST       ${brain.baseUrl}/api/v1 (project ${brain.slug}, admin ${adminEmail})`,
      `  WebSocket  ${brain.wsUrl}`,
      `  agent      ${brain.agentId}; token and HMAC secret in ${credentialsPath}`,
      `  log        ${brain.logPath}`,
      "Ctrl-C stops the brain and deletes its state folder.",
      ""
    ].join("\n")
  )
  const shutdown = () => {
    brain.stop().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.once("SIGINT", shutdown)
  process.once("SIGTERM", shutdown)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  })
}
