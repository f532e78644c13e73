import { randomUUID } from "node:crypto"
import * as Effect from "effect/Effect"
import { decodeHmacSecret, FrameSigner, renderCanonical } from "../../src/protocol/index.js"
import type { AgentShape } from "../../src/services/Agent.js"
import type { TestBrainShape } from "../../src/testing/TestBrain.js"
import { statusWhen } from "../faults/support.js"

/**
 * A signer holding the brain's keys for the agent's live session, to craft frames the test brain
 * would not send: chosen seq, nonce and timestamp. Its seq starts above `startSeq`.
 */
export const sessionSigner = (
  brain: TestBrainShape,
  sessionId: string,
  options: { readonly startSeq?: number; readonly nonce?: () => string } = {}
) => {
  const signer = new FrameSigner(
    decodeHmacSecret(brain.hmacSecret),
    { agentId: brain.agentId, projectId: brain.projectId, sessionId },
    options.nonce === undefined ? {} : { nonce: options.nonce }
  )
  for (let index = 0; index < (options.startSeq ?? 0); index++) signer.sign("skip", "skip", "{}")
  return {
    sign: (type: string, payload: Record<string, unknown>, now: Date = new Date(), id: string = randomUUID()) =>
      signer.sign(type, id, renderCanonical(payload as never), now)
  }
}

/** A well-formed command payload for `action`. */
export const commandPayload = (action: string, parameters: Record<string, unknown> = { task_id: "1" }) => ({
  action,
  target: { type: "task", id: null },
  parameters,
  timeout_seconds: 60,
  issued_by: null
})

/** The live session's id, waiting for one. */
export const liveSessionId = (agent: AgentShape) =>
  Effect.map(
    statusWhen(agent, (status) => status.sessionId !== null),
    (status) => status.sessionId!
  )
