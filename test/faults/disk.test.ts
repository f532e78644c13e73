import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Agent } from "../../src/services/Agent.js"
import { agentLayer, captureLogs } from "../support/agent.js"
import {
  event,
  receivedTaskIds,
  statusWhen,
  waitFor,
  warnings,
  whileHostRuns,
  withBrain,
  withBrainBehindProxy
} from "./support.js"

const tempFolder = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "z4j-disk-"))),
  (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
)

/** Mounts a tmpfs of `kilobytes` at `folder` for the scope; false where this process may not mount. */
const mountTmpfs = (folder: string, kilobytes: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      mkdirSync(folder, { recursive: true })
      return spawnSync("mount", ["-t", "tmpfs", "-o", `size=${kilobytes}k`, "tmpfs", folder]).status === 0
    }),
    (mounted) => Effect.sync(() => (mounted ? spawnSync("umount", ["-l", folder]) : undefined))
  )

const canMount = process.getuid?.() === 0

describe("disk faults", () => {
  it.live("a home under a regular file falls back and delivers", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const root = yield* tempFolder
        const file = join(root, "not-a-folder")
        writeFileSync(file, "x")
        yield* whileHostRuns(
          Effect.gen(function* () {
            const agent = yield* Agent
            for (let index = 0; index < 100; index++) yield* agent.emit(event(index))
            yield* waitFor(brain, () => receivedTaskIds(brain).size === 100)
            const status = yield* statusWhen(agent, (status) => status.buffer.depth === 0)
            expect(status.buffer.durable).toBe(true)
            expect(status.droppedEvents).toBe(0)
            expect(warnings(logs.lines, "not writable").length).toBe(1)
          }).pipe(Effect.provide(agentLayer(brain, { buffer: "sqlite", home: join(file, "home") })))
        )
      }).pipe(Effect.provide(logs.layer), Effect.scoped)
    })
  )

  it.live.skipIf(!canMount)("a full disk keeps events in memory and delivers them", () =>
    withBrainBehindProxy((brain, proxy) => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const disk = join(yield* tempFolder, "disk")
        expect(yield* mountTmpfs(disk, 64)).toBe(true)
        proxy.refuseNew(true)
        yield* whileHostRuns(
          Effect.gen(function* () {
            const agent = yield* Agent
            for (let index = 0; index < 400; index++) yield* agent.emit(event(index, { blob: "z".repeat(400) }))
            const full = yield* statusWhen(agent, (status) => status.buffer.depth === 400)
            expect(full.buffer.durable).toBe(false)
            expect(full.buffer.storageFailuresTotal).toBeGreaterThanOrEqual(1)
            proxy.refuseNew(false)
            yield* agent.reconnectNow
            yield* waitFor(brain, () => receivedTaskIds(brain).size === 400, 15_000)
            const status = yield* statusWhen(agent, (status) => status.buffer.depth === 0)
            expect(status.droppedEvents).toBe(0)
            expect(warnings(logs.lines, "keeping events in memory").length).toBe(1)
          }).pipe(
            Effect.provide(agentLayer(brain, { brainUrl: proxy.url, buffer: "sqlite", home: join(disk, "home") }))
          )
        )
      }).pipe(Effect.provide(logs.layer), Effect.scoped)
    })
  )
})
