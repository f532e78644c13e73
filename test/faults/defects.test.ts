import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Z4j from "../../src/layers/Z4j.js"
import { Agent } from "../../src/services/Agent.js"
import { Connection, connectWs } from "../../src/services/Connection.js"
import { captureLogs } from "../support/agent.js"
import { event, receivedTaskIds, statusWhen, waitFor, warnings, whileHostRuns, withBrain } from "./support.js"

/** The real transport, except that its first connect dies with a defect, as a bug in a transport would. */
const dyingOnce = () => {
  let calls = 0
  return Layer.succeed(Connection, {
    connect: (options) => {
      calls += 1
      return calls === 1 ? Effect.die(new Error("transport bug on connect")) : connectWs(options)
    }
  })
}

describe("defects inside the agent", () => {
  it.live("a defect in a connection attempt is logged and the agent reconnects", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.emit(event(1))
          yield* statusWhen(agent, (status) => status.connection.failureStreaks.protocol === 1)
          yield* agent.reconnectNow
          yield* waitFor(brain, () => receivedTaskIds(brain).has("task-1"))
          expect(warnings(logs.lines, "transport bug on connect").length).toBe(1)
        }).pipe(
          Effect.provide(
            Z4j.layerWith({ ...brain.agentOptions, buffer: "memory", flushIntervalMillis: 20 }, dyingOnce())
          ),
          Effect.provide(logs.layer)
        )
      )
    })
  )
})
