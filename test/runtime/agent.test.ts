import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { Agent } from "../../src/services/Agent.js"
import { event, statusWhen, waitFor, withBrain } from "../faults/support.js"
import { agentLayer, captureLogs, failWith, recordingAdapter } from "../support/agent.js"

describe("Agent", () => {
  it.live("hello carries the agent's identity and capabilities", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const hello = yield* waitFor(brain, () => brain.hellos.at(-1))
        const payload = hello.payload as Record<string, unknown>
        expect(hello.v).toBe(2)
        expect(payload.protocol_version).toBe("2")
        expect(payload.framework).toBe("node")
        expect(payload.worker_id).toMatch(/^node-\d+-\d+$/)
        expect(payload.worker_pid).toBe(process.pid)
        expect(payload.worker_started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/)
        expect(Object.keys(payload).sort()).toEqual([
          "agent_version",
          "capabilities",
          "engines",
          "framework",
          "host",
          "protocol_version",
          "runtime_features",
          "schedulers",
          "worker_id",
          "worker_pid",
          "worker_role",
          "worker_started_at"
        ])
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("engines registered before connecting appear in the hello", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({ engine: "bullmq", name: "payments", capabilities: ["retry_task"] })
      return Effect.gen(function* () {
        const hello = yield* waitFor(brain, () => brain.hellos.at(-1))
        const payload = hello.payload as Record<string, unknown>
        expect(payload.engines).toEqual(["bullmq"])
        expect(payload.capabilities).toEqual({
          bullmq: ["retry_by_reference_v1", "retry_task"],
          payments: ["retry_by_reference_v1", "retry_task"]
        })
        expect(payload.runtime_features).toEqual(["retry_by_reference"])
      }).pipe(
        Effect.provide(
          Layer.effectDiscard(Effect.flatMap(Agent, (agent) => agent.attachEngine(recorder.adapter))).pipe(
            Layer.provideMerge(agentLayer(brain))
          )
        )
      )
    })
  )

  it.live("renewSession sends a new hello", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({ engine: "bullmq", capabilities: ["retry_task"] })
      return Effect.gen(function* () {
        const agent = yield* Agent
        const first = yield* waitFor(brain, () => brain.connectedSessions() === 1 && brain.hellos.at(-1))
        expect((first.payload as Record<string, unknown>).engines).toEqual([])
        yield* agent.attachEngine(recorder.adapter)
        const hellosBefore = brain.hellos.length
        yield* agent.renewSession
        const renewed = yield* waitFor(brain, () => brain.hellos[hellosBefore])
        expect((renewed.payload as Record<string, unknown>).engines).toEqual(["bullmq"])
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        expect(brain.agentCloses.some((close) => close.reason === "engines changed")).toBe(true)
        const status = yield* agent.status
        expect(status.connection.failureStreaks).toEqual({ network: 0, protocol: 0, auth: 0 })
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("events reach the brain and are acknowledged", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        for (let index = 0; index < 250; index++) yield* agent.emit(event(index))
        yield* waitFor(brain, () => brain.events.length >= 250)
        const status = yield* statusWhen(agent, (status) => status.dispatcher.ackedTotal === 250)
        expect(status.buffer.depth).toBe(0)
        expect(status.droppedEvents).toBe(0)
        const ids = new Set(brain.events.map((received) => received.id))
        expect(ids.size).toBe(250)
        const first = brain.events.find((received) => received.task_id === "task-0")!
        expect(first.kind).toBe("task.succeeded")
        expect(first.engine).toBe("test")
        expect(first.data).toEqual({ task_name: "demo.add", index: 0 })
        expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("batches hold at most maxBatchEvents events", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        for (let index = 0; index < 1200; index++) yield* agent.emit(event(index))
        yield* waitFor(brain, () => brain.events.length >= 1200)
        const batches = brain.frames.filter((frame) => frame.type === "event_batch")
        const sizes = batches.map((frame) => (frame.payload.events as Array<unknown>).length)
        expect(Math.max(...sizes)).toBeLessThanOrEqual(100)
        expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(1200)
      }).pipe(Effect.provide(agentLayer(brain, { maxBatchEvents: 100 })))
    )
  )

  it.live("batches stay under the brain's maximum frame size", () =>
    withBrain(
      (brain) =>
        Effect.gen(function* () {
          const agent = yield* Agent
          for (let index = 0; index < 60; index++) yield* agent.emit(event(index, { blob: "x".repeat(2000) }))
          yield* waitFor(brain, () => brain.events.length >= 60)
          expect(brain.rejections).toEqual([])
          expect(brain.frames.filter((frame) => frame.type === "event_batch").length).toBeGreaterThan(6)
        }).pipe(Effect.provide(agentLayer(brain))),
      { maxFrameSizeBytes: 16_384 }
    )
  )

  it.live("an event larger than any frame is discarded and counted", () =>
    withBrain(
      (brain) =>
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.emit(event(0, { blob: "y".repeat(20_000) }))
          yield* agent.emit(event(1))
          yield* waitFor(brain, () => brain.events.some((received) => received.task_id === "task-1"))
          const status = yield* agent.status
          expect(brain.events.some((received) => received.task_id === "task-0")).toBe(false)
          expect(status.buffer.discardedTotal).toBe(1)
          expect(status.droppedEvents).toBe(1)
        }).pipe(Effect.provide(agentLayer(brain, { maxPayloadBytes: 100_000 }))),
      { maxFrameSizeBytes: 16_384 }
    )
  )

  it.live("unacknowledged batches are sent again after a reconnect", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        brain.faults.withholdAcks = true
        for (let index = 0; index < 20; index++) yield* agent.emit(event(index))
        yield* waitFor(brain, () => brain.events.length >= 20)
        const firstSession = brain.events[0]!.sessionId
        brain.faults.withholdAcks = false
        brain.dropAll()
        yield* agent.reconnectNow
        yield* waitFor(brain, () => brain.events.filter((received) => received.sessionId !== firstSession).length >= 20)
        const resent = new Set(
          brain.events.filter((received) => received.sessionId !== firstSession).map((received) => received.id)
        )
        expect(resent).toEqual(new Set(brain.events.slice(0, 20).map((received) => received.id)))
        const status = yield* statusWhen(agent, (status) => status.dispatcher.ackedTotal === 20)
        expect(status.buffer.depth).toBe(0)
        expect(brain.events.length).toBe(40)
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("a command is acknowledged, run once and answered once", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({
        engine: "test",
        capabilities: ["cancel_task"],
        behaviour: (command) => Effect.succeed({ cancelled: command.parameters.task_id })
      })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(recorder.adapter)
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const id = brain.sendCommand({
          action: "cancel_task",
          target: { type: "task", id: "test:7" },
          parameters: { engine: "test", task_id: "7" }
        })
        const result = yield* waitFor(brain, () => brain.commandResult(id))
        expect(result).toEqual({ status: "success", result: { cancelled: "7" }, error: null })
        brain.sendCommand({ id, action: "cancel_task", parameters: { engine: "test", task_id: "7" } })
        yield* waitFor(brain, () => brain.commandAcks().filter((ack) => ack === id).length === 2)
        expect(recorder.commands.length).toBe(1)
        expect(recorder.commands[0]!.parameters.task_id).toBe("7")
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("a command that runs too long fails with a timeout", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({
        capabilities: ["retry_task"],
        behaviour: () => Effect.as(Effect.sleep(Duration.seconds(30)), null)
      })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(recorder.adapter)
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const id = brain.sendCommand({ action: "retry_task", parameters: { task_id: "1" }, timeoutSeconds: 1 })
        const result = yield* waitFor(brain, () => brain.commandResult(id), 5_000)
        expect(result.status).toBe("failed")
        expect(result.error).toBe("timed out after 1 s")
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("unknown actions and failures become failed results with reasons", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({
        capabilities: ["cancel_task"],
        behaviour: () => failWith("job 9 is already finished")
      })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(recorder.adapter)
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const unknown = brain.sendCommand({ action: "pool_grow", parameters: { worker_name: "w", delta: 1 } })
        const refused = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "9" } })
        const unknownResult = yield* waitFor(brain, () => brain.commandResult(unknown))
        const refusedResult = yield* waitFor(brain, () => brain.commandResult(refused))
        expect(unknownResult.status).toBe("failed")
        expect(unknownResult.error).toContain("pool_grow is not supported")
        expect(refusedResult).toEqual({ status: "failed", result: null, error: "job 9 is already finished" })
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("a forged command is rejected, not run, and the agent reconnects", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({ capabilities: ["cancel_task"] })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(recorder.adapter)
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const hellosBefore = brain.hellos.length
        const forged = JSON.stringify({
          v: 2,
          id: "5b0e8f3c-1d2a-4c3b-9e4f-0a1b2c3d4e5f",
          ts: new Date().toISOString(),
          nonce: "AAAAAAAAAAAAAAAAAAAAAA",
          seq: 99,
          hmac: "0".repeat(64),
          type: "command",
          payload: {
            action: "cancel_task",
            target: { type: "task", id: null },
            parameters: {},
            timeout_seconds: 60,
            issued_by: null
          }
        })
        brain.sendRaw(forged)
        yield* agent.reconnectNow
        yield* waitFor(brain, () => brain.hellos.length > hellosBefore)
        expect(recorder.commands).toEqual([])
        expect(brain.commandAcks()).toEqual([])
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("a replayed command frame is rejected and not run twice", () =>
    withBrain((brain) => {
      const recorder = recordingAdapter({ capabilities: ["cancel_task"] })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(recorder.adapter)
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const id = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "1" } })
        yield* waitFor(brain, () => brain.commandResult(id))
        const hellosBefore = brain.hellos.length
        const original = brain.sentFrames.find((text) => text.includes(id))!
        brain.sendRaw(original)
        yield* agent.reconnectNow
        yield* waitFor(brain, () => brain.hellos.length > hellosBefore)
        expect(recorder.commands.length).toBe(1)
        expect(brain.commandAcks().filter((ack) => ack === id).length).toBe(1)
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("closing the scope flushes and says goodbye", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* waitFor(brain, () => brain.connectedSessions() === 1)
            for (let index = 0; index < 30; index++) yield* agent.emit(event(index))
          }).pipe(Effect.provide(agentLayer(brain, { flushIntervalMillis: 5_000 })))
        )
        expect(brain.events.length).toBe(30)
        yield* waitFor(brain, () => brain.agentCloses.length > 0)
        expect(brain.agentCloses[0]).toEqual({ code: 1000, reason: "goodbye" })
      })
    )
  )

  it.live("a burst larger than the intake queue is not dropped", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        // Chunks of one batch, each followed by a yield as a host's event loop gives between jobs: the
        // pump must take every full batch before the next chunks fill the queue.
        for (let chunk = 0; chunk < 10; chunk++) {
          for (let index = 0; index < 500; index++) yield* agent.emit(event(chunk * 500 + index))
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
        }
        yield* waitFor(brain, () => brain.events.length >= 5_000)
        expect((yield* agent.status).droppedEvents).toBe(0)
      }).pipe(Effect.provide(agentLayer(brain, { intakeCapacity: 1_000, flushIntervalMillis: 100 })))
    )
  )

  it.live("a redactor of the user's replaces the default", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.emit(event(1, { password: "hunter2-hunter2", note: "kept" }))
        yield* waitFor(brain, () => brain.events.length >= 1)
        expect(brain.events[0]!.data).toEqual({ scrubbed: "by the user" })
      }).pipe(
        Effect.provide(
          agentLayer(brain, {
            redactor: {
              redact: (value) => {
                const event = value as { readonly data?: unknown }
                return { ...(value as object), data: event.data === undefined ? null : { scrubbed: "by the user" } }
              }
            }
          })
        )
      )
    )
  )

  it.live("interrupting the agent's fiber flushes and says goodbye", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* waitFor(brain, () => brain.connectedSessions() === 1)
            for (let index = 0; index < 30; index++) yield* agent.emit(event(index))
            return yield* Effect.never
          }).pipe(Effect.provide(agentLayer(brain, { flushIntervalMillis: 5_000 })))
        )
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        yield* Effect.sleep(Duration.millis(50))
        yield* Fiber.interrupt(fiber)
        expect(brain.events.length).toBe(30)
        yield* waitFor(brain, () => brain.agentCloses.length > 0)
        expect(brain.agentCloses[0]).toEqual({ code: 1000, reason: "goodbye" })
      })
    )
  )

  it.live("interrupted shutdown still finishes within its bound", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* waitFor(brain, () => brain.connectedSessions() === 1)
            brain.faults.withholdAcks = true
            for (let index = 0; index < 10; index++) yield* agent.emit(event(index))
            return yield* Effect.never
          }).pipe(Effect.provide(agentLayer(brain, { drainTimeoutMillis: 500 })))
        )
        yield* waitFor(brain, () => brain.events.length >= 10)
        const started = Date.now()
        yield* Fiber.interrupt(fiber)
        expect(Date.now() - started).toBeLessThan(5_000)
        expect(brain.agentCloses[0]).toEqual({ code: 1000, reason: "goodbye" })
      })
    )
  )

  it.live("shutdown finishes within its bound when the brain is gone", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const started = Date.now()
        yield* Effect.scoped(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* waitFor(brain, () => brain.connectedSessions() === 1)
            brain.faults.withholdAcks = true
            for (let index = 0; index < 10; index++) yield* agent.emit(event(index))
            yield* waitFor(brain, () => brain.events.length >= 10)
          }).pipe(Effect.provide(agentLayer(brain, { drainTimeoutMillis: 500 })))
        )
        expect(Date.now() - started).toBeLessThan(5_000)
      })
    )
  )

  it.live("a refused token backs off in the auth class without a hot loop", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        brain.faults.refuseAuth = true
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.rejections.length >= 1)
        yield* Effect.sleep(Duration.millis(1500))
        const status = yield* agent.status
        expect(brain.rejections.length).toBe(1)
        expect(status.connection.phase).toBe("backoff")
        expect(status.connection.failureStreaks.auth).toBe(1)
        expect(status.connection.lastError).toContain("4401")
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("a clock skewed beyond 60 s is reported with its remedy", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        brain.faults.clockSkewMillis = 120_000
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.rejections.some((rejection) => rejection.code === 4403))
        const status = yield* statusWhen(agent, (status) => status.connection.failureStreaks.auth === 1)
        expect(brain.rejections[0]!.reason).toContain("stale")
        expect(status.connection.lastError).toContain("4403")
        expect(status.connection.phase).toBe("backoff")
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("heartbeats merge the health of adapters sharing an engine", () =>
    withBrain((brain) => {
      const withHealth = (name: string, depths: Record<string, number>) => ({
        ...recordingAdapter({ engine: "bullmq", name }).adapter,
        health: Effect.succeed({ "bullmq.queue_depths": JSON.stringify(depths) })
      })
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(withHealth("payments", { invoices: 3 }))
        yield* agent.attachEngine(withHealth("mailers", { emails: 5 }))
        yield* agent.attachEngine({
          ...recordingAdapter({ engine: "slow", name: "slow" }).adapter,
          health: Effect.as(Effect.never, {})
        })
        brain.dropAll()
        yield* agent.reconnectNow
        const heartbeat = yield* waitFor(
          brain,
          () =>
            brain.frames.find(
              (frame) =>
                frame.type === "heartbeat" &&
                (frame.payload.adapter_health as Record<string, string>)["slow.error"] !== undefined
            ),
          10_000
        )
        const health = heartbeat.payload.adapter_health as Record<string, string>
        expect(JSON.parse(health["bullmq.queue_depths"]!)).toEqual({ invoices: 3, emails: 5 })
        expect(health["slow.error"]).toBe("health check timed out after 200 ms")
      }).pipe(Effect.provide(agentLayer(brain, { healthTimeoutMillis: 200 })))
    })
  )

  it.live("a protocol version refusal is terminal", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        brain.faults.closeAfterHello = 4426
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.rejections.length >= 1)
        const status = yield* statusWhen(agent, (status) => status.connection.phase === "terminal")
        expect(status.connection.terminalReason).toContain("4426")
      }).pipe(Effect.provide(agentLayer(brain)))
    )
  )

  it.live("no secret appears in any log line", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        yield* agent.emit(event(1, { password: "hunter2-hunter2" }))
        yield* waitFor(brain, () => brain.events.length >= 1)
        brain.closeAll(4403)
        yield* waitFor(brain, () => logs.lines.some((line) => line.includes("4403")))
        const all = logs.lines.join("\n")
        expect(all).not.toContain(brain.token)
        expect(all).not.toContain(brain.hmacSecret)
        expect(all).not.toContain(brain.hmacSecret.replace(/=+$/, ""))
        expect(all).not.toContain("hunter2-hunter2")
        expect(brain.events[0]!.data.password).toBe("[REDACTED]")
      }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
    })
  )
})
