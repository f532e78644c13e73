import * as Effect from "effect/Effect"
import { afterEach, describe, expect, it } from "vitest"
import * as Z4j from "../../src/layers/Z4j.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { recordingAdapter } from "../support/agent.js"

let brain: TestBrain.TestBrainShape | undefined

afterEach(async () => {
  await brain?.stop()
  brain = undefined
})

describe("Z4j.start", () => {
  it("runs an agent for code outside Effect", async () => {
    brain = await TestBrain.start()
    const agent = await Z4j.start({ ...brain.agentOptions, buffer: "memory", flushIntervalMillis: 20 })
    const recorder = recordingAdapter({ engine: "plain", capabilities: ["cancel_task"] })
    await agent.registerEngine(recorder.adapter)
    const scoped = recordingAdapter({ engine: "scoped", name: "scoped" })
    let released = false
    await agent.registerEngine(
      Effect.acquireRelease(Effect.succeed(scoped.adapter), () =>
        Effect.sync(() => {
          released = true
        })
      )
    )
    agent.emit({ kind: "task.started", engine: "plain", taskId: "p-1", data: { task_name: "plain.job" } })
    await brain.waitFor(() => brain!.events.find((event) => event.task_id === "p-1"))
    const status = await agent.status()
    expect(status.engines.map((engine) => engine.name)).toEqual(["plain", "scoped"])
    const first = agent.stop()
    expect(agent.stop()).toBe(first)
    await first
    expect(released).toBe(true)
    expect(brain.agentCloses).toEqual([{ code: 1000, reason: "goodbye" }])
  })

  it("rejects an invalid log level by name", async () => {
    const saved = process.env.Z4J_LOG_LEVEL
    process.env.Z4J_LOG_LEVEL = "loud"
    try {
      await expect(
        Z4j.start({ brainUrl: "ws://127.0.0.1:9", token: "t", hmacSecret: "x", projectId: "p" })
      ).rejects.toThrow(/Z4J_LOG_LEVEL: "loud" is not valid/)
    } finally {
      if (saved === undefined) delete process.env.Z4J_LOG_LEVEL
      else process.env.Z4J_LOG_LEVEL = saved
    }
  })

  it("rejects invalid settings with the variable to fix", async () => {
    await expect(
      Z4j.start({ brainUrl: "ftp://example.com", token: "t", hmacSecret: "x", projectId: "p" })
    ).rejects.toThrow(/Z4J_BRAIN_URL/)
  })
})
