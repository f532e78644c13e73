import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Agent } from "../../src/services/Agent.js"
import type { FailureClass } from "../../src/services/AgentState.js"
import { agentLayer, captureLogs } from "../support/agent.js"
import { event, receivedTaskIds, statusWhen, waitFor, warnings, whileHostRuns, withBrain } from "./support.js"

/** Every close code the brain documents, with the backoff class the agent must pick. */
const expected: ReadonlyArray<readonly [number, FailureClass]> = [
  [4400, "protocol"],
  [4401, "auth"],
  [4403, "auth"],
  [4408, "network"],
  [4429, "network"],
  [4002, "protocol"],
  [4003, "auth"],
  [1000, "network"],
  [1001, "network"],
  [1011, "protocol"]
]

describe("brain close codes", () => {
  for (const [code, failureClass] of expected) {
    it.live(`${code} backs off in the ${failureClass} class and keeps events`, () =>
      withBrain((brain) => {
        const logs = captureLogs()
        return whileHostRuns(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* waitFor(brain, () => brain.connectedSessions() === 1)
            brain.closeAll(code, "closed by the test")
            const status = yield* statusWhen(agent, (status) => status.connection.failureStreaks[failureClass] === 1)
            expect(status.connection.phase).toBe("backoff")
            expect(status.connection.lastError).toContain(`code ${code}`)
            for (let index = 0; index < 20; index++) yield* agent.emit(event(index))
            yield* agent.reconnectNow
            yield* waitFor(brain, () => receivedTaskIds(brain).size === 20)
            expect((yield* agent.status).droppedEvents).toBe(0)
            expect(warnings(logs.lines, `code ${code}`).length).toBe(1)
          }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
        )
      })
    )
  }

  it.live("4426 in a session is terminal and events stay buffered", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* waitFor(brain, () => brain.connectedSessions() === 1)
          brain.closeAll(4426, "unsupported protocol version")
          const status = yield* statusWhen(agent, (status) => status.connection.phase === "terminal")
          expect(status.connection.terminalReason).toContain("4426")
          for (let index = 0; index < 20; index++) yield* agent.emit(event(index))
          yield* agent.flush
          yield* agent.reconnectNow
          const after = yield* statusWhen(agent, (status) => status.buffer.depth === 20)
          expect(after.connection.phase).toBe("terminal")
          expect(after.droppedEvents).toBe(0)
          expect(brain.hellos.length).toBe(1)
          expect(warnings(logs.lines, "4426").length).toBe(1)
        }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
      )
    })
  )
})
