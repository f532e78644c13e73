/**
 * Runs the real z4j brain (the Python package `z4j`) on 127.0.0.1 for interop tests: a virtualenv in a
 * cache folder that outlives the run, a fresh state folder, a scrubbed environment, headless admin
 * bootstrap, a cookie session for REST, and agents minted through the API.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { homedir, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const versions = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), "brain-version.json"), "utf8")
) as {
  readonly packages: Readonly<Record<string, string>>
}

/** The pinned `z4j` version, the one place it is written being interop/brain-version.json. */
export const brainVersion = versions.packages.z4j!

const adminEmail = "admin@example.com"
// Long enough for the brain's password policy (12+ characters, three classes under 16).
const adminPassword = "Interop-Admin-Pass-2026!"

const cacheRoot = () => join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "z4j-agent")

/**
 * Creates, or reuses, a virtualenv with the pinned packages. A new one is built beside the final path
 * and renamed into place, so a run killed mid-install never leaves a half-built environment behind.
 */
export const ensureVenv = (): string => {
  const pins = Object.entries(versions.packages).map(([name, version]) => `${name}==${version}`)
  const target = join(cacheRoot(), `brain-${brainVersion}`)
  const marker = join(target, "z4j-agent-pins.txt")
  if (existsSync(marker) && readFileSync(marker, "utf8") === pins.join("\n")) return target
  mkdirSync(cacheRoot(), { recursive: true })
  const building = `${target}.building-${process.pid}`
  rmSync(building, { recursive: true, force: true })
  try {
    execFileSync("python3", ["-m", "venv", building], { stdio: "inherit" })
    execFileSync(join(building, "bin", "pip"), ["install", "--quiet", "--disable-pip-version-check", ...pins], {
      stdio: "inherit",
      timeout: 600_000
    })
  } catch (error) {
    rmSync(building, { recursive: true, force: true })
    throw new Error(
      `installing the real brain (${pins.join(", ")}) into a virtualenv failed; it needs python3 with venv and access to PyPI: ${String(error)}`
    )
  }
  writeFileSync(join(building, "z4j-agent-pins.txt"), pins.join("\n"))
  // A virtualenv records its own path in its scripts, so it is renamed only if the final path is free;
  // a concurrent run that finished first wins, and this copy is dropped.
  if (existsSync(target)) rmSync(target, { recursive: true, force: true })
  try {
    renameSync(building, target)
  } catch {
    rmSync(building, { recursive: true, force: true })
  }
  // The scripts of the renamed environment point at the building path; the module entry point does not.
  return target
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

/** Credentials of one agent, as the brain returned them when it was created. */
export interface MintedAgent {
  readonly agentId: string
  readonly projectId: string
  readonly token: string
  readonly hmacSecret: string
}

export interface RestResponse<A> {
  readonly status: number
  readonly body: A
}

/** A cookie-session REST client: the session cookie, plus the CSRF header on unsafe methods. */
export class RestClient {
  constructor(
    readonly baseUrl: string,
    private readonly cookie: string,
    private readonly csrf: string
  ) {}

  async request<A = unknown>(method: string, path: string, body?: unknown): Promise<RestResponse<A>> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        cookie: this.cookie,
        ...(method === "GET" ? {} : { "x-csrf-token": this.csrf })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text === "" ? null : JSON.parse(text)
    } catch {
      // Not JSON: kept as text so a failing test shows what the brain said.
    }
    return { status: response.status, body: parsed as A }
  }

  get<A = unknown>(path: string) {
    return this.request<A>("GET", path)
  }

  post<A = unknown>(path: string, body: unknown) {
    return this.request<A>("POST", path, body)
  }

  delete<A = unknown>(path: string) {
    return this.request<A>("DELETE", path)
  }
}

export interface RunningBrain {
  readonly baseUrl: string
  readonly port: number
  readonly home: string
  readonly logPath: string
  readonly slug: string
  readonly rest: RestClient
  /** The first agent, created at start. */
  readonly agent: MintedAgent
  readonly mintAgent: (name: string) => Promise<MintedAgent>
  /** Agent options for `Z4j.layer`. */
  readonly agentOptions: (agent?: MintedAgent) => {
    readonly brainUrl: string
    readonly token: string
    readonly hmacSecret: string
    readonly projectId: string
  }
  /** Stops the brain and starts it again on the same state folder and port. */
  readonly restart: () => Promise<void>
  readonly stop: () => Promise<void>
  readonly stopProcess: () => Promise<void>
  readonly startProcess: () => Promise<void>
}

const login = async (baseUrl: string): Promise<RestClient> => {
  const response = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: adminEmail, password: adminPassword })
  })
  if (response.status !== 200) {
    throw new Error(`login to the brain failed with HTTP ${response.status}: ${await response.text()}`)
  }
  const cookies = response.headers.getSetCookie()
  const value = (name: string) =>
    cookies.map((cookie) => cookie.split(";")[0]!).find((pair) => pair.startsWith(`${name}=`)) ?? ""
  const session = value("z4j_session")
  const csrf = value("z4j_csrf").slice("z4j_csrf=".length)
  if (session === "" || csrf === "") throw new Error("the brain's login answer set no session or CSRF cookie")
  return new RestClient(baseUrl, session, csrf)
}

/** Starts the pinned brain on a free loopback port with a fresh state folder, and creates one agent. */
export const startBrain = async (): Promise<RunningBrain> => {
  const venv = ensureVenv()
  const port = await freePort()
  const home = mkdtempSync(join(tmpdir(), "z4j-brain-"))
  const logPath = join(home, "brain.log")
  const baseUrl = `http://127.0.0.1:${port}`
  let child: ChildProcess | undefined

  const killOnExit = () => child?.kill("SIGKILL")
  process.once("exit", killOnExit)

  const startProcess = async () => {
    const log = openSync(logPath, "a")
    // A scrubbed environment: the brain reads every Z4J_* variable, and an agent's settings in the
    // test's environment would change its mode or secrets.
    child = spawn(
      join(venv, "bin", "python"),
      [
        "-m",
        "z4j_brain.cli",
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
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)))
    const deadline = Date.now() + 90_000
    while (Date.now() < deadline) {
      const done = await Promise.race([exited, sleep(250).then(() => undefined)])
      if (done !== undefined) {
        throw new Error(
          `the brain exited with code ${done} while starting; its log: ${logPath}\n${readFileSync(logPath, "utf8").slice(-3000)}`
        )
      }
      try {
        const response = await fetch(`${baseUrl}/api/v1/health/ready`)
        if (response.status === 200) return
      } catch {
        // Not listening yet.
      }
    }
    throw new Error(`the brain did not become ready within 90 s; its log: ${logPath}`)
  }

  const stopProcess = async () => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()))
    running.kill("SIGTERM")
    const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])
    if (!stopped) {
      running.kill("SIGKILL")
      await exited
    }
  }

  await startProcess()
  let rest = await login(baseUrl)
  const slug = "default"

  const mintAgent = async (name: string): Promise<MintedAgent> => {
    const response = await rest.post<{
      agent: { id: string; project_id: string }
      token: string
      hmac_secret: string
    }>(`/api/v1/projects/${slug}/agents`, { name })
    if (response.status !== 201) {
      throw new Error(`creating agent ${name} failed with HTTP ${response.status}: ${JSON.stringify(response.body)}`)
    }
    return {
      agentId: response.body.agent.id,
      projectId: response.body.agent.project_id,
      token: response.body.token,
      hmacSecret: response.body.hmac_secret
    }
  }

  const agent = await mintAgent("ts-interop-1")
  const brain: RunningBrain = {
    baseUrl,
    port,
    home,
    logPath,
    slug,
    get rest() {
      return rest
    },
    agent,
    mintAgent,
    agentOptions: (which = agent) => ({
      brainUrl: baseUrl,
      token: which.token,
      hmacSecret: which.hmacSecret,
      projectId: which.projectId
    }),
    restart: async () => {
      await stopProcess()
      await startProcess()
      rest = await login(baseUrl)
    },
    stopProcess,
    startProcess: async () => {
      await startProcess()
      rest = await login(baseUrl)
    },
    stop: async () => {
      await stopProcess()
      process.removeListener("exit", killOnExit)
      rmSync(home, { recursive: true, force: true })
    }
  }
  return brain
}

/** Polls `probe` every 250 ms until it returns a value, for at most `timeoutMillis`. */
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
