import { randomBytes, randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import fc from "fast-check"
import { decodeBrainFrame, FrameSigner, FrameVerifier, renderCanonical } from "../../src/protocol/index.js"
import { Agent } from "../../src/services/Agent.js"
import { waitFor, warnings, whileHostRuns, withBrain } from "../faults/support.js"
import { agentLayer, captureLogs, recordingAdapter } from "../support/agent.js"
import { liveSessionId } from "./support.js"

const secret = new Uint8Array(randomBytes(32))
const binding = { agentId: randomUUID(), projectId: randomUUID(), sessionId: randomUUID() }

const frameTypes = fc.oneof(
  fc.constantFrom("command", "event_batch_ack", "error", "hello_ack", "heartbeat", ""),
  fc.string({ maxLength: 20 })
)

/** JSON values without -0, which canonical JSON has no spelling for. */
const jsonValue = fc
  .jsonValue({ maxDepth: 4, noUnicodeString: false })
  .map((value) => JSON.parse(JSON.stringify(value)))

const payloads = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 12 }), jsonValue, { maxKeys: 6 }),
  fc.record(
    {
      action: fc.oneof(fc.constantFrom("cancel_task", "retry_task", "purge_queue"), jsonValue),
      target: fc.oneof(fc.record({ type: fc.string(), id: fc.option(fc.string(), { nil: null }) }), jsonValue),
      parameters: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 3 }), jsonValue),
      timeout_seconds: fc.oneof(fc.integer({ min: -5, max: 100_000 }), jsonValue),
      issued_by: fc.oneof(fc.constant(null), jsonValue)
    },
    { requiredKeys: [] }
  ),
  fc.record(
    { acked_id: fc.oneof(fc.string(), jsonValue), received: jsonValue, accepted: jsonValue },
    { requiredKeys: [] }
  )
)

/** One frame as it may arrive: random text, random JSON, or a signed frame, as signed or with one edit. */
const inbound = fc.oneof(
  fc.string({ maxLength: 200 }).map((text) => ({ text, signed: false })),
  jsonValue.map((value) => ({ text: JSON.stringify(value), signed: false })),
  fc
    .tuple(
      frameTypes,
      payloads,
      fc.nat(),
      fc.string({ minLength: 1, maxLength: 3 }),
      // "none" sends the frame as signed, so the verifying path runs too, not only by a chance no-op edit.
      fc.constantFrom("set", "cut", "add", "none")
    )
    .map(([type, payload, at, insert, edit]) => {
      const signed = new FrameSigner(secret, binding).sign(type, randomUUID(), renderCanonical(payload as never))
      const index = at % signed.length
      const text =
        edit === "none"
          ? signed
          : edit === "cut"
            ? signed.slice(0, index)
            : edit === "set"
              ? signed.slice(0, index) + insert + signed.slice(index + 1)
              : signed.slice(0, index) + insert + signed.slice(index)
      return { text, signed: text === signed, original: signed }
    })
)

const sameFrame = (left: string, right: string) => {
  const parse = (text: string) => {
    const { hmac: _hmac, ...rest } = JSON.parse(text) as Record<string, unknown>
    return rest
  }
  expect(parse(left)).toEqual(parse(right))
}

describe("fuzzed brain frames", () => {
  it("receive path: only unedited frames verify", () => {
    let verified = 0
    fc.assert(
      fc.property(inbound, (frame) => {
        const verifier = new FrameVerifier(secret, binding)
        const result = verifier.verify(frame.text)
        if (Either.isRight(result)) {
          verified += 1
          if (!frame.signed) sameFrame(frame.text, (frame as { original: string }).original)
          const decoded = decodeBrainFrame(result.right)
          expect(Either.isLeft(decoded) || typeof decoded.right.type === "string").toBe(true)
        } else {
          expect(frame.signed).toBe(false)
        }
      }),
      { numRuns: 10_000 }
    )
    expect(verified).toBeGreaterThan(0)
  })

  it("signed frames verify and decode", () => {
    fc.assert(
      fc.property(frameTypes, payloads, (type, payload) => {
        const text = new FrameSigner(secret, binding).sign(type, randomUUID(), renderCanonical(payload as never))
        const result = new FrameVerifier(secret, binding).verify(text)
        expect(Either.isRight(result)).toBe(true)
        if (Either.isRight(result)) decodeBrainFrame(result.right)
      }),
      { numRuns: 2_000 }
    )
  })

  it.live("live agent runs no fuzzed command", () =>
    withBrain((brain) => {
      const logs = captureLogs()
      const engine = recordingAdapter({ capabilities: ["cancel_task", "retry_task"] })
      return whileHostRuns(
        Effect.gen(function* () {
          const agent = yield* Agent
          yield* agent.attachEngine(engine.adapter)
          const sessionId = yield* liveSessionId(agent)
          const samples = fc.sample(fc.tuple(frameTypes, payloads), { numRuns: 500, seed: 42 })
          let sentCommands = 0
          for (const [type, payload] of samples) {
            // Well-formed commands are the brain's to send; these are the malformed ones around them.
            if (type === "command" && typeof (payload as Record<string, unknown>).action === "string") continue
            if (type === "command") sentCommands += 1
            brain.sendSigned(type, randomUUID(), payload)
          }
          const probe = brain.sendCommand({ action: "cancel_task", parameters: { task_id: "probe" } })
          yield* waitFor(brain, () => brain.commandResult(probe), 15_000)
          expect(sentCommands).toBeGreaterThan(0)
          expect(engine.commands.map((command) => command.parameters.task_id)).toEqual(["probe"])
          expect((yield* agent.status).sessionId).toBe(sessionId)
          expect(warnings(logs.lines, "ignored").length).toBe(11)
        }).pipe(Effect.provide(agentLayer(brain)), Effect.provide(logs.layer)),
        2_000
      )
    })
  )
})
