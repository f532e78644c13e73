import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { Agent } from "../../src/services/Agent.js"
import type { TestBrainShape } from "../../src/testing/TestBrain.js"
import { statusWhen, waitFor, warnings, whileHostRuns, withBrain } from "../faults/support.js"
import { agentLayer, captureLogs, recordingAdapter } from "../support/agent.js"
import { commandPayload, liveSessionId, sessionSigner } from "./support.js"

interface Context {
  readonly brain: TestBrainShape
  readonly sessionId: string
}

/** Frames that fail verification, each with the reason the agent must give. */
const rejected: ReadonlyArray<{
  readonly name: string
  readonly reason: string
  readonly frame: (context: Context) => string
}> = [
  {
    name: "forged HMAC",
    reason: "bad_signature",
    frame: ({ brain, sessionId }) => {
      const text = sessionSigner(brain, sessionId, { startSeq: 1_000 }).sign("command", commandPayload("cancel_task"))
      return text.replace(/"hmac":"([0-9a-f])/, (_, first: string) => `"hmac":"${first === "0" ? "1" : "0"}`)
    }
  },
  {
    name: "a payload changed after signing",
    reason: "bad_signature",
    frame: ({ brain, sessionId }) =>
      sessionSigner(brain, sessionId, { startSeq: 1_000 })
        .sign("command", commandPayload("cancel_task", { task_id: "1" }))
        .replace('"task_id":"1"', '"task_id":"2"')
  },
  {
    name: "a replayed seq",
    reason: "replayed_seq",
    frame: ({ brain, sessionId }) => sessionSigner(brain, sessionId).sign("command", commandPayload("cancel_task"))
  },
  {
    name: "a stale timestamp",
    reason: "stale",
    frame: ({ brain, sessionId }) =>
      sessionSigner(brain, sessionId, { startSeq: 1_000 }).sign(
        "command",
        commandPayload("cancel_task"),
        new Date(Date.now() - 120_000)
      )
  },
  {
    name: "a future timestamp",
    reason: "future",
    frame: ({ brain, sessionId }) =>
      sessionSigner(brain, sessionId, { startSeq: 1_000 }).sign(
        "command",
        commandPayload("cancel_task"),
        new Date(Date.now() + 120_000)
      )
  },
  {
    name: "a frame from another session",
    reason: "bad_signature",
    frame: ({ brain }) =>
      sessionSigner(brain, "00000000-0000-4000-8000-000000000000", { startSeq: 1_000 }).sign(
        "command",
        commandPayload("cancel_task")
      )
  },
  { name: "malformed JSON", reason: "malformed", frame: () => '{"v":2,"type":"command",' },
  { name: "a JSON array", reason: "malformed", frame: () => "[1,2,3]" },
  { name: "protocol v1", reason: "bad_version", frame: () => '{"v":1,"type":"command","payload":{}}' },
  { name: "a string payload", reason: "bad_payload", frame: () => '{"v":2,"type":"command","payload":"x"}' },
  { name: "no hmac", reason: "bad_signature", frame: () => '{"v":2,"type":"command","payload":{}}' }
]

/** Signed command payloads with a wrong type in one field each. */
const wrongTypes: ReadonlyArray<Record<string, unknown>> = [
  { ...commandPayload("cancel_task"), action: 7 },
  { ...commandPayload("cancel_task"), action: null },
  { ...commandPayload("cancel_task"), action: ["cancel_task"] },
  { ...commandPayload("cancel_task"), target: "task:1" },
  { ...commandPayload("cancel_task"), target: { type: 3, id: null } },
  { ...commandPayload("cancel_task"), target: { type: "task", id: 5 } },
  { ...commandPayload("cancel_task"), parameters: ["task_id", "1"] },
  { ...commandPayload("cancel_task"), parameters: "task_id=1" },
  { ...commandPayload("cancel_task"), parameters: null },
  { ...commandPayload("cancel_task"), timeout_seconds: "60" },
  { ...commandPayload("cancel_task"), timeout_seconds: null },
  { ...commandPayload("cancel_task"), timeout_seconds: { seconds: 60 } },
  { ...commandPayload("cancel_task"), issued_by: 12 },
  { ...commandPayload("cancel_task"), issued_by: { user: "x" } },
  { target: { type: "task", id: null }, parameters: {}, timeout_seconds: 60 },
  {}
]

const recorder = () => recordingAdapter({ capabilities: ["cancel_task", "retry_task"] })

describe("hostile brain frames", () => {
  for (const testCase of rejected) {
    it.live(`${testCase.name} is rejected, not run, and the agent reconnects`, () =>
      withBrain((brain) => {
        const logs = captureLogs()
        const engine = recorder()
        return whileHostRuns(
          Effect.gen(function* () {
            const agent = yield* Agent
            yield* agent.attachEngine(engine.adapter)
            const sessionId = yield* liveSessionId(agent)
            // One real command first, so the agent's replay guard has seen seq 1.
            const first = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "0" } })
            yield* waitFor(brain, () => brain.commandResult(first))
            brain.sendRaw(testCase.frame({ brain, sessionId }))
            yield* waitFor(brain, () => brain.connectedSessions() === 0 || undefined)
            yield* agent.reconnectNow
            const status = yield* statusWhen(
              agent,
              (status) => status.sessionId !== null && status.sessionId !== sessionId
            )
            expect(status.connection.phase).toBe("connected")
            expect(engine.commands.length).toBe(1)
            expect(brain.commandAcks()).toEqual([first])
            expect(warnings(logs.lines, `rejected a frame from the brain (${testCase.reason})`).length).toBe(1)
            expect(brain.agentCloses).toEqual([])
          }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
        )
      })
    )
  }

  it.live("a replayed nonce with a higher seq is rejected", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      const engine = recorder()
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(engine.adapter)
        const sessionId = yield* liveSessionId(agent)
        const signer = sessionSigner(brain, sessionId, { startSeq: 1_000, nonce: () => "bm9uY2Utbm9uY2Utbm9uYw" })
        brain.sendRaw(signer.sign("announcement", { text: "accepted, then ignored" }))
        brain.sendRaw(signer.sign("command", commandPayload("cancel_task")))
        yield* waitFor(brain, () => brain.connectedSessions() === 0 || undefined)
        expect(engine.commands).toEqual([])
        expect(warnings(logs.lines, "rejected a frame from the brain (replayed_nonce)").length).toBe(1)
      }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
    })
  )

  it.live("a command replayed into a later session is not run again", () =>
    withBrain((brain) => {
      const engine = recorder()
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(engine.adapter)
        const firstSession = yield* liveSessionId(agent)
        const id = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "1" } })
        yield* waitFor(brain, () => brain.commandResult(id))
        const original = brain.sentFrames.find((text) => text.includes(id))!
        brain.dropAll()
        yield* agent.reconnectNow
        yield* statusWhen(agent, (status) => status.sessionId !== null && status.sessionId !== firstSession)
        brain.sendRaw(original)
        yield* waitFor(brain, () => brain.connectedSessions() === 0 || undefined)
        expect(engine.commands.length).toBe(1)
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )

  it.live("a frame over the inbound limit closes the socket and the agent reconnects", () =>
    withBrain((brain) => {
      const engine = recorder()
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.attachEngine(engine.adapter)
          const sessionId = yield* liveSessionId(agent)
          brain.sendRaw(`{"v":2,"type":"command","payload":{"pad":"${"p".repeat(17 * 1024 * 1024)}"}}`)
          yield* waitFor(brain, () => brain.connectedSessions() === 0 || undefined)
          yield* agent.reconnectNow
          yield* statusWhen(agent, (status) => status.sessionId !== null && status.sessionId !== sessionId)
          expect(engine.commands).toEqual([])
        }).pipe(Effect.provide(agentLayer(brain))),
        2_000
      )
    })
  )

  it.live("unknown frame types are ignored and logged once per type", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const agent = yield* Agent
        const sessionId = yield* liveSessionId(agent)
        for (let index = 0; index < 20; index++) brain.sendSigned("mystery", `m-${index}`, { index })
        brain.sendSigned("other_mystery", "o-1", {})
        const id = brain.sendCommand({ action: "pool_grow", parameters: {} })
        yield* waitFor(brain, () => brain.commandResult(id))
        expect((yield* agent.status).sessionId).toBe(sessionId)
        expect(warnings(logs.lines, "ignored a frame from the brain").length).toBe(2)
      }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
    })
  )

  it.live("signed commands with a wrong type in any field are not run", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      const engine = recorder()
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(engine.adapter)
        const sessionId = yield* liveSessionId(agent)
        for (const [index, payload] of wrongTypes.entries()) brain.sendSigned("command", `bad-${index}`, payload)
        const id = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "ok" } })
        yield* waitFor(brain, () => brain.commandResult(id))
        expect(engine.commands.map((command) => command.parameters.task_id)).toEqual(["ok"])
        expect((yield* agent.status).sessionId).toBe(sessionId)
        expect(warnings(logs.lines, "ignored a frame from the brain").length).toBeGreaterThanOrEqual(1)
        expect(warnings(logs.lines, "ignored a frame from the brain").length).toBeLessThanOrEqual(2)
      }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer))
    })
  )
})

describe("hostile brain frame types", () => {
  it.live("types named after Object.prototype members are ignored", () =>
    withBrain((brain) => {
      const engine = recorder()
      return Effect.gen(function* () {
        const agent = yield* Agent
        yield* agent.attachEngine(engine.adapter)
        const sessionId = yield* liveSessionId(agent)
        for (const type of ["valueOf", "constructor", "toString", "hasOwnProperty", "__proto__", "isPrototypeOf"]) {
          brain.sendSigned(type, `${type}-1`, commandPayload("cancel_task"))
        }
        const id = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "after" } })
        yield* waitFor(brain, () => brain.commandResult(id), 5_000)
        expect((yield* agent.status).sessionId).toBe(sessionId)
        expect(engine.commands.map((command) => command.parameters.task_id)).toEqual(["after"])
      }).pipe(Effect.provide(agentLayer(brain)))
    })
  )
})
