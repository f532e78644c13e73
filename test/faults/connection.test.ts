import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Agent } from "../../src/services/Agent.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { agentLayer, captureLogs, recordingAdapter } from "../support/agent.js"
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

describe("connection faults", () => {
  it.live("a cut during a batch loses nothing and is logged once", () =>
    withBrainBehindProxy((brain, proxy) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* waitFor(brain, () => brain.connectedSessions() === 1)
          brain.faults.ackDelayMillis = 200
          for (let index = 0; index < 2_000; index++) yield* agent.emit(event(index))
          yield* waitFor(brain, () => brain.events.length > 0)
          proxy.cutAll()
          for (let index = 2_000; index < 3_000; index++) yield* agent.emit(event(index))
          brain.faults.ackDelayMillis = 0
          yield* agent.reconnectNow
          yield* waitFor(brain, () => receivedTaskIds(brain).size === 3_000, 15_000)
          const status = yield* statusWhen(agent, (status) => status.buffer.depth === 0)
          expect(status.droppedEvents).toBe(0)
          expect(status.connection.connectsTotal).toBeGreaterThanOrEqual(2)
          expect(warnings(logs.lines, "1006").length).toBe(1)
          expect(warnings(logs.lines, "1006")[0]).toContain("lost without a close frame")
        }).pipe(
          Effect.provide(agentLayer(brain, { brainUrl: proxy.url, maxBatchEvents: 100 })),
          Effect.provide(logs.layer)
        )
      )
    })
  )

  it.live("stopping before the first session waits for it", () =>
    Effect.gen(function* () {
      const logs = captureLogs()
      // A brain that is down when the agent starts, and back while the agent is shutting down.
      const gone = yield* Effect.promise(() => TestBrain.start())
      yield* Effect.promise(() => gone.stop())
      let back: TestBrain.TestBrainShape | undefined
      yield* Effect.scoped(
        Effect.gen(function* () {
          const agent = yield* Agent
          for (let index = 0; index < 20; index++) yield* agent.emit(event(index))
          yield* Effect.forkDaemon(
            Effect.delay(
              Effect.promise(async () => {
                back = await TestBrain.start(TestBrain.sameAddress(gone))
              }),
              Duration.millis(300)
            )
          )
        }).pipe(Effect.provide(agentLayer(gone, { drainTimeoutMillis: 5_000 })), Effect.provide(logs.layer))
      )
      expect(back).toBeDefined()
      expect(receivedTaskIds(back!).size).toBe(20)
      expect(warnings(logs.lines, "not acknowledged")).toEqual([])
      expect(back!.agentCloses[0]).toEqual({ code: 1000, reason: "goodbye" })
      yield* Effect.promise(() => back!.stop())
    })
  )

  it.live("a cut during the handshake is retried", () =>
    withBrainBehindProxy((brain, proxy) =>
      whileHostRuns(
        Effect.gen(function* () {
          proxy.pause()
          const agent = yield* Agent
          yield* agent.emit(event(1))
          yield* waitFor(brain, () => proxy.open() === 1)
          yield* Effect.sleep(Duration.millis(100))
          proxy.cutAll()
          proxy.resume()
          const failed = yield* statusWhen(agent, (status) => status.connection.failureStreaks.network === 1)
          expect(failed.connection.lastError).not.toBeNull()
          yield* agent.reconnectNow
          yield* waitFor(brain, () => receivedTaskIds(brain).has("task-1"))
          expect(brain.hellos.length).toBe(1)
        }).pipe(Effect.provide(agentLayer(brain, { brainUrl: proxy.url, handshakeTimeoutMillis: 2_000 })))
      )
    )
  )

  it.live("a handshake the network holds times out and is retried", () =>
    withBrainBehindProxy((brain, proxy) =>
      whileHostRuns(
        Effect.gen(function* () {
          proxy.pause()
          const agent = yield* Agent
          const failed = yield* statusWhen(agent, (status) => status.connection.failureStreaks.network === 1)
          expect(failed.connection.phase).toBe("backoff")
          proxy.resume()
          proxy.cutAll()
          yield* agent.reconnectNow
          yield* statusWhen(agent, (status) => status.connection.phase === "connected")
        }).pipe(Effect.provide(agentLayer(brain, { brainUrl: proxy.url, handshakeTimeoutMillis: 300 })))
      )
    )
  )

  it.live("a cut while a command runs delivers its result on the next session", () =>
    withBrainBehindProxy((brain, proxy) => {
      const recorder = recordingAdapter({
        capabilities: ["cancel_task"],
        behaviour: () => Effect.as(Effect.sleep(Duration.millis(300)), { cancelled: true })
      })
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.attachEngine(recorder.adapter)
          yield* waitFor(brain, () => brain.connectedSessions() === 1)
          const id = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "3" } })
          yield* waitFor(brain, () => recorder.commands.length === 1)
          proxy.cutAll()
          yield* agent.reconnectNow
          const result = yield* waitFor(brain, () => brain.commandResult(id))
          expect(result.status).toBe("success")
          expect(recorder.commands.length).toBe(1)
        }).pipe(Effect.provide(agentLayer(brain, { brainUrl: proxy.url })))
      )
    })
  )

  it.live("slow links deliver everything in order of acks", () =>
    withBrainBehindProxy((brain, proxy) =>
      whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* waitFor(brain, () => brain.connectedSessions() === 1)
          proxy.setLatency(150)
          for (let index = 0; index < 500; index++) yield* agent.emit(event(index))
          yield* waitFor(brain, () => receivedTaskIds(brain).size === 500)
          const status = yield* statusWhen(agent, (status) => status.buffer.depth === 0)
          expect(status.droppedEvents).toBe(0)
        }).pipe(Effect.provide(agentLayer(brain, { brainUrl: proxy.url, maxBatchEvents: 50 })))
      )
    )
  )

  it.live("a brain that stops acking gets its batches again, logged once per outage", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.emit(event(0))
          yield* statusWhen(agent, (status) => status.dispatcher.ackedTotal === 1)
          brain.faults.withholdAcks = true
          for (let index = 1; index <= 200; index++) yield* agent.emit(event(index))
          yield* waitFor(brain, () => receivedTaskIds(brain).size === 201)
          // Several ack timeouts pass while the brain withholds acks.
          yield* Effect.sleep(Duration.millis(1_500))
          const during = yield* agent.status
          expect(during.buffer.depth).toBe(200)
          expect(during.droppedEvents).toBe(0)
          brain.faults.withholdAcks = false
          yield* statusWhen(agent, (status) => status.buffer.depth === 0, 5_000)
          expect(receivedTaskIds(brain).size).toBe(201)
          expect(warnings(logs.lines, "no event_batch_ack").length).toBe(1)
        }).pipe(
          Effect.provide(agentLayer(brain, { ackTimeoutMillis: 300, maxBatchEvents: 20 })),
          Effect.provide(logs.layer)
        )
      )
    })
  )

  it.live("a clock skewed beyond the window backs off in the auth class, logged once", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          brain.faults.clockSkewMillis = 120_000
          const agent = yield* Agent
          for (let index = 0; index < 50; index++) yield* agent.emit(event(index))
          const status = yield* statusWhen(agent, (status) => status.connection.failureStreaks.auth === 1)
          expect(status.connection.phase).toBe("backoff")
          expect(status.connection.lastError).toContain("4403")
          expect(warnings(logs.lines, "4403").length).toBe(1)
          brain.faults.clockSkewMillis = 0
          yield* agent.reconnectNow
          yield* waitFor(brain, () => receivedTaskIds(brain).size === 50)
          expect((yield* agent.status).droppedEvents).toBe(0)
        }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
      )
    })
  )
})
