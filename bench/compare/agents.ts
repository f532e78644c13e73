/**
 * Starts an agent (this one or z4j-bare) in its own process, pointed at a brain, and talks to it over
 * the line protocol its driver speaks (bench/compare/ourAgent.ts, bench/py/bare_agent.py).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface, type Interface } from "node:readline"
import { fileURLToPath } from "node:url"
import { barePython } from "../py/venv.js"

/** The agent a child process runs. */
export type AgentKind = "ours" | "bare"

/** The connection fields both agents need. */
export interface BrainTarget {
  readonly brainUrl: string
  readonly token: string
  readonly hmacSecret: string
  readonly projectId: string
}

/** A running agent process. */
export interface AgentProcess {
  readonly kind: AgentKind
  readonly pid: number
  /** Sends one command and resolves with the answer to it. */
  readonly request: <A = Record<string, unknown>>(command: Record<string, unknown>) => Promise<A>
  /** Everything the process wrote to stderr so far, for failure messages. */
  readonly stderr: () => string
  /** Asks the agent to stop, then ends the process and deletes its state folder. */
  readonly stop: () => Promise<void>
}

const here = fileURLToPath(new URL(".", import.meta.url))
const root = join(here, "..", "..")

let bundled: string | undefined

/**
 * Bundles the driver and the agent's sources into one ES module, so the child runs on plain Node as a
 * published build would: under tsx, the TypeScript loader alone adds tens of MB of RSS. The file lives
 * under node_modules so its package imports resolve.
 */
export const bundleOurAgent = (): string => {
  if (bundled !== undefined) return bundled
  const outfile = join(root, "node_modules", ".cache", "z4j-bench", "ourAgent.mjs")
  const result = spawnSync(
    join(root, "node_modules", ".bin", "esbuild"),
    [
      join(here, "ourAgent.ts"),
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--packages=external",
      "--log-level=warning",
      `--outfile=${outfile}`
    ],
    { encoding: "utf8" }
  )
  if (result.status !== 0) throw new Error(`esbuild could not bundle ourAgent.ts: ${result.stderr}`)
  bundled = outfile
  return outfile
}

const command = (
  kind: AgentKind,
  nodeArgs: ReadonlyArray<string>
): { readonly file: string; readonly args: ReadonlyArray<string> } =>
  kind === "ours"
    ? { file: process.execPath, args: [...nodeArgs, bundleOurAgent()] }
    : { file: barePython(), args: [join(here, "..", "py", "bare_agent.py")] }

/**
 * Spawns an agent with a fresh state folder and resolves once its driver has started it.
 */
export const spawnAgent = async (
  kind: AgentKind,
  target: BrainTarget,
  extraEnv: Readonly<Record<string, string>> = {},
  /** Flags for our agent's `node`, such as `--cpu-prof`; z4j-bare ignores them. */
  nodeArgs: ReadonlyArray<string> = []
): Promise<AgentProcess> => {
  const home = mkdtempSync(join(tmpdir(), `z4j-bench-${kind}-`))
  const { file, args } = command(kind, nodeArgs)
  // Only what the agent needs: no inherited Z4J_* settings from the caller's shell.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    // z4j-bare takes the brain's base URL with an http scheme and derives ws:// from it.
    Z4J_BRAIN_URL: kind === "bare" ? target.brainUrl.replace(/^ws:/, "http:") : target.brainUrl,
    Z4J_TOKEN: target.token,
    Z4J_PROJECT_ID: target.projectId,
    Z4J_HMAC_SECRET: target.hmacSecret,
    Z4J_HOME: home,
    Z4J_LOG_LEVEL: kind === "bare" ? "WARNING" : "warning",
    ...extraEnv
  }
  const child: ChildProcess = spawn(file, args, { env, stdio: ["pipe", "pipe", "pipe"] })
  let errors = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    errors = (errors + chunk.toString("utf8")).slice(-20_000)
  })
  const lines: Interface = createInterface({ input: child.stdout! })
  const waiting: Array<(line: Record<string, unknown>) => void> = []
  const pending: Array<Record<string, unknown>> = []
  lines.on("line", (line) => {
    let parsed: Record<string, unknown>
    try {
      parsed = JSON.parse(line) as Record<string, unknown>
    } catch {
      return
    }
    const next = waiting.shift()
    if (next) next(parsed)
    else pending.push(parsed)
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const nextLine = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const queued = pending.shift()
      if (queued) return resolve(queued)
      waiting.push(resolve)
      void exited.then((code) =>
        reject(new Error(`the ${kind} agent exited with ${code} before answering; stderr: ${errors.slice(-3000)}`))
      )
    })
  const started = await nextLine()
  if (started.op !== "started") throw new Error(`the ${kind} agent did not start: ${JSON.stringify(started)}`)
  let stopping: Promise<void> | undefined
  return {
    kind,
    pid: child.pid ?? 0,
    request: async <A>(message: Record<string, unknown>) => {
      child.stdin!.write(`${JSON.stringify(message)}\n`)
      return (await nextLine()) as A
    },
    stderr: () => errors,
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null) {
          child.stdin!.write(`${JSON.stringify({ op: "stop" })}\n`)
          const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
          await exited
          clearTimeout(timer)
        }
        rmSync(home, { recursive: true, force: true })
      })()
      return stopping
    }
  }
}
