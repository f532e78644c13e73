import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { TaskEvent } from "../../src/engines/EngineAdapter.js"
import { Agent } from "../../src/services/Agent.js"
import { event, statusWhen, waitFor, warnings, whileHostRuns, withBrain } from "../faults/support.js"
import { agentLayer, captureLogs, recordingAdapter } from "../support/agent.js"

const cyclic = () => {
  const value: Record<string, unknown> = { name: "loop" }
  value.self = value
  return value
}

const deeplyNested = (depth: number) => {
  let value: Record<string, unknown> = { leaf: true }
  for (let level = 0; level < depth; level++) value = { next: value }
  return value
}

const throwingGetter = () =>
  Object.defineProperty({ visible: 1 }, "broken", {
    enumerable: true,
    get: () => {
      throw new Error("getter failed")
    }
  })

const throwingProxy = () =>
  new Proxy(
    {},
    {
      ownKeys: () => {
        throw new Error("proxy failed")
      }
    }
  )

/** Host values a worker may hand the agent as event data; each must arrive sanitized. */
const hostileData: ReadonlyArray<readonly [string, () => unknown]> = [
  ["cycle", cyclic],
  ["huge string", () => "x".repeat(5_000_000)],
  ["deep nesting", () => deeplyNested(10_000)],
  ["bigint", () => 2n ** 80n],
  ["function", () => () => 1],
  ["symbol", () => Symbol("host")],
  ["throwing getter", throwingGetter],
  ["throwing proxy", throwingProxy]
]

/** Events whose very shape is broken: the sink must count them as dropped, not throw. */
const brokenEvents: ReadonlyArray<readonly [string, () => unknown]> = [
  ["null", () => null],
  ["a string", () => "task.succeeded"],
  [
    "a throwing kind getter",
    () =>
      Object.defineProperty({ engine: "test", taskId: "x", data: {} }, "kind", {
        get: () => {
          throw new Error("kind failed")
        }
      })
  ],
  ["an empty engine", () => ({ kind: "task.succeeded", engine: "", taskId: "empty-engine", data: {} })],
  ["a 41-character engine", () => ({ kind: "task.succeeded", engine: "e".repeat(41), taskId: "long", data: {} })],
  ["a 201-character task id", () => ({ kind: "task.succeeded", engine: "test", taskId: "t".repeat(201), data: {} })],
  ["a numeric kind", () => ({ kind: 7, engine: "test", taskId: "numeric-kind", data: {} })]
]

describe("hostile host values", () => {
  it.live("hostile event data arrives sanitized", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          hostileData.forEach(([name, make], index) => {
            expect(() => Effect.runSync(agent.emit(event(index, { case: name, value: make() })))).not.toThrow()
          })
          yield* waitFor(brain, () => brain.events.length >= hostileData.length, 20_000)

          const byCase = new Map(brain.events.map((received) => [received.data.case, received.data.value]))
          expect([...byCase.keys()].sort()).toEqual(hostileData.map(([name]) => name).sort())
          expect(byCase.get("bigint")).toBe(2n ** 80n)
          expect(byCase.has("function")).toBe(true)
          expect(String(byCase.get("huge string")).length).toBeLessThan(5_000_000)
          expect((byCase.get("cycle") as Record<string, unknown>).name).toBe("loop")
          expect((byCase.get("throwing getter") as Record<string, unknown>).visible).toBe(1)

          const status = yield* agent.status
          expect(status.droppedEvents).toBe(0)
          expect(logs.lines.join("\n")).not.toContain("getter failed")
        }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer)),
        2_000
      )
    })
  )

  it.live("broken events are counted, never thrown", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      const engine = recordingAdapter()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.attachEngine(engine.adapter)
          for (const [, make] of brokenEvents) {
            expect(() => engine.emit(make() as TaskEvent)).not.toThrow()
          }
          engine.emit(event(1))
          yield* waitFor(brain, () => brain.events.length >= 1)

          const status = yield* statusWhen(agent, (current) => current.droppedEvents >= brokenEvents.length)
          expect(status.droppedEvents).toBe(brokenEvents.length)
          expect(brain.events.map((received) => received.task_id)).toEqual(["task-1"])
          // One warning a minute at most: it names the first broken event, with the fix.
          expect(warnings(logs.lines, "dropped")).toHaveLength(1)
          expect(warnings(logs.lines, "dropped")[0]).toContain("invalid event: expected an object")
        }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer)),
        2_000
      )
    })
  )
})
