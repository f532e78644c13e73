import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { TestBrainShape } from "../../src/testing/TestBrain.js"
import { receivedTaskIds, waitFor, withBrain } from "./support.js"

interface Worker {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly stderr: () => string
}

const startWorker = (brain: TestBrainShape, home: string, emit: number): Worker => {
  // Node itself with the tsx loader, not `npx tsx`: a signal must reach the process that holds the buffer.
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "worker.ts")], {
    env: { ...process.env, Z4J_FAULT_WORKER: JSON.stringify({ agent: { ...brain.agentOptions, home }, emit }) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  let stderr = ""
  let partial = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n")
    partial = parts.pop()!
    lines.push(...parts.filter((line) => line.startsWith("depth=")))
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  return { child, lines, stderr: () => stderr }
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode)
    else child.once("exit", (code, signal) => resolve(signal ?? code))
  })

describe("worker process faults", () => {
  it.live(
    "kill -9 with unacknowledged events, then a restart delivers them",
    () =>
      withBrain((brain) =>
        Effect.gen(function* () {
          const home = mkdtempSync(join(tmpdir(), "z4j-kill-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(home, { recursive: true, force: true })))
          brain.faults.withholdAcks = true
          const first = startWorker(brain, home, 500)
          yield* Effect.addFinalizer(() => Effect.sync(() => first.child.kill("SIGKILL")))
          yield* waitFor(brain, () => receivedTaskIds(brain).size === 500, 30_000)
          yield* waitFor(brain, () => first.lines.at(-1)?.startsWith("depth=500 "), 10_000)
          first.child.kill("SIGKILL")
          expect(yield* Effect.promise(() => exited(first.child))).toBe("SIGKILL")
          const firstSession = brain.events[0]!.sessionId

          brain.faults.withholdAcks = false
          const second = startWorker(brain, home, 0)
          yield* Effect.addFinalizer(() => Effect.sync(() => second.child.kill("SIGKILL")))
          const resent = () =>
            new Set(brain.events.filter((event) => event.sessionId !== firstSession).map((event) => event.task_id))
          yield* waitFor(brain, () => resent().size === 500, 30_000)
          yield* waitFor(brain, () => second.lines.at(-1)?.startsWith("depth=0 "), 10_000)
          expect(second.lines.at(-1)).toMatch(/ dropped=0 /)
          second.child.kill("SIGTERM")
          expect(yield* Effect.promise(() => exited(second.child))).toBe(0)
          const folders = readdirSync(home).filter((name) => statSync(join(home, name)).isDirectory())
          expect(folders.length).toBe(1)
        }).pipe(Effect.scoped)
      ),
    60_000
  )
})
