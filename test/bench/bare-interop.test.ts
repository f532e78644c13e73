import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type AgentProcess, spawnAgent } from "../../bench/compare/agents.js"
import { ensureBareVenv, IndexUnreachable } from "../../bench/py/venv.js"
import * as TestBrain from "../../src/testing/TestBrain.js"

// The virtualenv is built once per machine (about 15 s) and cached; only an unreachable PyPI skips.
const unreachable = await ensureBareVenv().then(
  () => undefined,
  (error: unknown) => {
    if (error instanceof IndexUnreachable) return error.message
    throw error
  }
)
if (unreachable !== undefined) console.warn(`z4j-bare interop skipped: ${unreachable}`)

const withBareAgent = <A>(use: (brain: TestBrain.TestBrainShape, agent: AgentProcess) => Promise<A>) =>
  Effect.promise(async () => {
    const brain = await TestBrain.start()
    let agent: AgentProcess | undefined
    try {
      agent = await spawnAgent("bare", brain.agentOptions)
      return await use(brain, agent)
    } finally {
      await agent?.stop()
      await brain.stop()
    }
  })

describe.skipIf(unreachable !== undefined)("z4j-bare against TestBrain", () => {
  it.live(
    "events are received intact and acked",
    () =>
      withBareAgent(async (brain, agent) => {
        await brain.waitFor(() => brain.connectedSessions() > 0, 15_000)
        const burst = await agent.request<{ drained: boolean }>({ op: "burst", count: 300, timeoutSeconds: 15 })

        expect(burst.drained).toBe(true)
        expect(brain.rejections).toEqual([])
        expect(brain.hellos[0]).toMatchObject({
          type: "hello",
          payload: { framework: "bare", agent_version: "1.13.0" }
        })
        const received = new Map(brain.events.map((event) => [event.id, event]))
        expect(received.size).toBe(300)
        const sequences = [...received.values()].map((event) => event.data.seq).sort((a, b) => Number(a) - Number(b))
        expect(sequences).toEqual(Array.from({ length: 300 }, (_, index) => index + 1))
        const sample = [...received.values()][0]!
        expect(sample).toMatchObject({ kind: "task.succeeded", engine: "bench" })
        expect(sample.data).toMatchObject({ queue: "emails", note: "déjà envoyé", kwargs: { locale: "fr-FR" } })
        const batches = new Set(brain.events.map((event) => event.batchId))
        const acked = new Set(
          brain.sentFrames
            .map((text) => JSON.parse(text) as { type: string; payload: { acked_id?: string } })
            .filter((frame) => frame.type === "event_batch_ack")
            .map((frame) => frame.payload.acked_id)
        )
        expect([...batches].filter((id) => !acked.has(id))).toEqual([])
      }),
    30_000
  )
})
