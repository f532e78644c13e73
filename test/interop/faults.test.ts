import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { eventually, startBrain } from "../../interop/brain.js"
import { type SharedBrain, sharedBrain } from "../../interop/shared.js"
import * as Z4j from "../../src/layers/Z4j.js"
import { Agent, type AgentStatus } from "../../src/services/Agent.js"

let brain: SharedBrain
const homes: Array<string> = []

/** An agent in its own runtime, with its log lines captured. */
const startAgent = (options: Z4j.Options) => {
  const home = mkdtempSync(join(tmpdir(), "z4j-interop-faults-"))
  homes.push(home)
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  const layer = Z4j.layer({ home, ...options }).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger)))
  const runtime = ManagedRuntime.make(layer as Layer.Layer<Agent, unknown>)
  const status = () => runtime.runPromise(Effect.flatMap(Agent, (agent) => agent.status))
  const statusWhen = (label: string, predicate: (status: AgentStatus) => boolean, timeoutMillis = 30_000) =>
    eventually(
      label,
      async () => {
        const current = await status()
        return predicate(current) ? current : undefined
      },
      timeoutMillis
    )
  return { runtime, lines, status, statusWhen }
}

const event = (index: number) => ({
  kind: "task.succeeded" as const,
  engine: "effect",
  taskId: `outage-${index}`,
  data: { task_name: "interop.outage", index }
})

beforeAll(() => {
  brain = sharedBrain()
})

afterAll(async () => {
  for (const home of homes) rmSync(home, { recursive: true, force: true })
})

describe("interop faults", () => {
  it("a wrong HMAC secret gets 4403, says so once, and backs off in the auth class", async () => {
    const wrongSecret = Buffer.alloc(32, 7).toString("base64url")
    const minted = await brain.mintAgent("ts-interop-wrong-secret")
    const agent = startAgent({ ...brain.agentOptions(minted), hmacSecret: wrongSecret })
    try {
      const status = await agent.statusWhen("the 4403 close", (status) => status.connection.failureStreaks.auth >= 1)
      expect(status.connection.lastError).toContain("4403")
      const logged = agent.lines.filter((line) => line.includes("4403"))
      expect(logged.length).toBe(1)
      expect(logged[0]).toContain("Z4J_HMAC_SECRET")
      expect(logged[0]).toContain("clock")
      // The auth class waits at least 10 s before the next attempt: no hot loop.
      await new Promise((resolve) => setTimeout(resolve, 5_000))
      const later = await agent.status()
      expect(later.connection.failureStreaks.auth).toBe(1)
      expect(later.connection.phase).toBe("backoff")
      expect(agent.lines.join("\n")).not.toContain(wrongSecret)
      expect(agent.lines.join("\n")).not.toContain(minted.token)
    } finally {
      await agent.runtime.dispose()
    }
  })

  it("a revoked agent is closed with 4003 and then refused with 4401, in the auth class", async () => {
    const minted = await brain.mintAgent("ts-interop-revoked")
    const agent = startAgent(brain.agentOptions(minted))
    try {
      await agent.statusWhen("the agent to connect", (status) => status.sessionId !== null)
      const revoked = await brain.rest.delete(`/api/v1/projects/${brain.slug}/agents/${minted.agentId}`)
      expect(revoked.status).toBe(204)
      const status = await agent.statusWhen(
        "the revocation close",
        (status) => status.connection.failureStreaks.auth >= 1
      )
      expect(status.connection.lastError).toMatch(/4003|4401/)
      expect(status.connection.phase).toBe("backoff")
      expect(agent.lines.some((line) => /4003|4401/.test(line))).toBe(true)
    } finally {
      await agent.runtime.dispose()
    }
  })

  it("events emitted while the brain is stopped arrive after it restarts", async () => {
    // A brain of its own, because this test stops it and the other files share theirs.
    const ownBrain = await startBrain()
    const agent = startAgent({ ...ownBrain.agentOptions(), buffer: "sqlite" })
    try {
      await agent.statusWhen("the agent to connect", (status) => status.sessionId !== null)
      await ownBrain.stopProcess()
      const down = await agent.statusWhen("the agent to notice the outage", (status) => status.sessionId === null)
      expect(down.connection.phase).not.toBe("terminal")
      await agent.runtime.runPromise(
        Effect.flatMap(Agent, (agent) =>
          Effect.forEach(
            Array.from({ length: 50 }, (_, index) => index),
            (index) => agent.emit(event(index))
          )
        )
      )
      await agent.statusWhen("the events to be buffered", (status) => status.buffer.depth === 50)
      const during = await agent.status()
      expect(during.connection.failureStreaks.network).toBeGreaterThanOrEqual(1)
      expect(during.connection.failureStreaks.auth).toBe(0)
      await ownBrain.startProcess()
      await agent.runtime.runPromise(Effect.flatMap(Agent, (agent) => agent.reconnectNow))
      const after = await agent.statusWhen(
        "the buffered events to be acknowledged",
        (status) => status.buffer.depth === 0 && status.dispatcher.ackedTotal === 50,
        60_000
      )
      expect(after.droppedEvents).toBe(0)
      for (const index of [0, 49]) {
        const task = await ownBrain.rest.get<{ state: string }>(
          `/api/v1/projects/${ownBrain.slug}/tasks/effect/outage-${index}`
        )
        expect(task.status).toBe(200)
        expect(task.body.state).toBe("success")
      }
    } finally {
      await agent.runtime.dispose()
      await ownBrain.stop()
    }
  }, 180_000)
})
