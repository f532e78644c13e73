import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Agent } from "../../src/services/Agent.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { agentLayer } from "../support/agent.js"
import { event, statusWhen, whileHostRuns } from "./support.js"

describe("brain restart", () => {
  it.live("restart mid-batch delivers every event", () =>
    Effect.acquireUseRelease(
      Effect.promise(() => TestBrain.start()),
      (first) =>
        whileHostRuns(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* Effect.promise(() => first.waitFor(() => first.connectedSessions() === 1))
            // The first brain stores batches but never acknowledges them, as a brain that dies between
            // its commit and its ack would.
            first.faults.withholdAcks = true
            for (let index = 0; index < 1_000; index++) yield* agent.emit(event(index))
            yield* Effect.promise(() => first.waitFor(() => first.events.length >= 1_000))
            expect(first.sentFrames.filter((text) => text.includes(`"type":"event_batch_ack"`))).toHaveLength(0)

            yield* Effect.promise(() => first.stop())
            for (let index = 1_000; index < 1_500; index++) yield* agent.emit(event(index))
            const second = yield* Effect.promise(() => TestBrain.start(TestBrain.sameAddress(first)))
            yield* agent.reconnectNow
            yield* Effect.promise(() =>
              second.waitFor(() => new Set(second.events.map((received) => received.task_id)).size === 1_500, 15_000)
            )

            const status = yield* statusWhen(agent, (current) => current.buffer.depth === 0)
            expect(status.droppedEvents).toBe(0)
            expect(status.connection.connectsTotal).toBe(2)
            yield* Effect.promise(() => second.stop())
          }).pipe(Effect.provide(agentLayer(first, { maxBatchEvents: 100 })))
        ),
      (first) => Effect.promise(() => first.stop())
    )
  )
})
