/**
 * Throughput of the outbound protocol hot path for a 500-event batch: render each event as canonical
 * JSON, join them into an event_batch payload and sign the frame, next to Node's raw HMAC-SHA256 over
 * the same envelope bytes. Also times the inbound path (verify a signed batch, as a brain does).
 *
 * Run with `npx tsx bench/protocol.bench.ts`.
 */
import { createHmac, randomUUID } from "node:crypto"
import {
  canonicalEnvelope,
  encodeEvent,
  encodeEventBatchPayload,
  FrameSigner,
  FrameVerifier,
  formatPydanticDatetime
} from "../src/protocol/index.js"
import { median } from "./stats.js"

const eventsPerBatch = 500
const rounds = 7
const batchesPerRound = 40

const secret = new Uint8Array(32).fill(7)
const binding = {
  agentId: "5f0c3a3e-8d52-4b7e-9c1a-2f4b6d8e0a11",
  projectId: "a3c1e7f2-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
  sessionId: "0b9d8c7e-6f5a-4b3c-a2d1-e0f9a8b7c6d5"
}

/** Events shaped like BullMQ lifecycle events after redaction: about ten fields with nested data. */
const kinds = ["task.started", "task.succeeded", "task.failed"] as const

const makeEvents = () =>
  Array.from({ length: eventsPerBatch }, (_, index) => ({
    id: randomUUID(),
    kind: kinds[index % 3]!,
    engine: "bullmq",
    task_id: `emails:${100_000 + index}`,
    occurred_at: new Date(Date.UTC(2026, 11, 4, 10, 0, 0, index % 1000)),
    data: {
      task_name: "send-welcome-email",
      queue: "emails",
      worker: "worker-1@host-a",
      priority: "normal",
      attempts: index % 4,
      runtime_ms: 12.5 + index,
      args: [index, "fr", { template: "bienvenue", locale: "fr_FR" }],
      result: index % 3 === 1 ? { sent: true, recipient: "[REDACTED]" } : null,
      exception: index % 3 === 2 ? "Error: SMTP timeout after 30000 ms" : null,
      tags: ["welcome", "é-mail"]
    }
  }))

const time = (run: () => void): number => {
  const start = process.hrtime.bigint()
  for (let batch = 0; batch < batchesPerRound; batch++) run()
  return Number(process.hrtime.bigint() - start) / 1e9
}

const measure = (run: () => void): number => {
  for (let warmup = 0; warmup < 3; warmup++) time(run)
  const seconds: Array<number> = []
  for (let round = 0; round < rounds; round++) seconds.push(time(run))
  return (eventsPerBatch * batchesPerRound) / median(seconds)
}

const events = makeEvents()
const bodies = events.map(encodeEvent)
const payload = encodeEventBatchPayload(bodies)
const signer = new FrameSigner(secret, binding)
const sample = signer.sign("event_batch", "ev_0123456789ab", payload)
const envelope = canonicalEnvelope(sample, binding)
const now = new Date()

let sink = 0
const fullPath = measure(() => {
  const rendered = events.map(encodeEvent)
  sink += signer.sign("event_batch", "ev_0123456789ab", encodeEventBatchPayload(rendered), now).length
})
const signOnly = measure(() => {
  sink += signer.sign("event_batch", "ev_0123456789ab", encodeEventBatchPayload(bodies), now).length
})
const rawHmac = measure(() => {
  sink += createHmac("sha256", secret).update(envelope).digest("hex").length
})
const verify = measure(() => {
  const wire = new FrameSigner(secret, binding).sign("event_batch", "ev_0123456789ab", payload)
  const verified = new FrameVerifier(secret, binding).verify(wire)
  sink += verified._tag === "Right" ? 1 : 0
})

const format = (value: number) => `${Math.round(value).toLocaleString("en-US")} events/s`
console.log(`protocol bench: ${eventsPerBatch}-event batches, ${Buffer.byteLength(sample)} bytes per signed frame`)
console.log(`node ${process.version}, ${formatPydanticDatetime(new Date())}`)
console.log(`render + join + sign        ${format(fullPath)}`)
console.log(`join + sign (cached events) ${format(signOnly)}`)
console.log(`raw createHmac only         ${format(rawHmac)}`)
console.log(`sign + verify (inbound)     ${format(verify)}`)
console.log(`ratio render+sign / raw HMAC  ${(fullPath / rawHmac).toFixed(3)}`)
console.log(`ratio join+sign / raw HMAC    ${(signOnly / rawHmac).toFixed(3)}`)
if (sink === 0) console.log("unreachable")
