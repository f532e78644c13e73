import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")

export interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a CLI run: nothing from this machine's Z4J_* variables, and no npm update notice on stderr. */
export const baseEnvironment = (home: string): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  HOME: home,
  TMPDIR: home,
  NPM_CONFIG_UPDATE_NOTIFIER: "false",
  Z4J_LOG_FORMAT: "logfmt"
})

/**
 * Starts the CLI as `npx tsx src/cli/main.ts ...args`. With `direct` it runs as `node --import tsx` in
 * one process, so that a signal sent to the child reaches the CLI itself and not npx.
 */
export const start = (
  args: ReadonlyArray<string>,
  environment: Record<string, string>,
  options: { readonly direct?: boolean } = {}
): {
  readonly child: ChildProcess
  readonly done: Promise<Outcome>
  /** Everything the child wrote to stderr so far. */
  readonly stderr: () => string
} => {
  const child =
    options.direct === true
      ? spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: root, env: environment })
      : spawn("npx", ["tsx", "src/cli/main.ts", ...args], { cwd: root, env: environment })
  let stdout = ""
  let stderr = ""
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
  })
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done, stderr: () => stderr }
}

/** Runs the CLI to completion. It is asynchronous, so a brain in this process keeps serving meanwhile. */
export const cli = (args: ReadonlyArray<string>, environment: Record<string, string>): Promise<Outcome> =>
  start(args, environment).done

/** Waits until `predicate` holds, polling every 20 ms. */
export const eventually = async (predicate: () => boolean, timeoutMillis = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMillis
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMillis} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
