/**
 * Measures the whole outbound cost of one 500-event batch, up to the socket. The full path renders each
 * event as canonical JSON, joins the event_batch payload, signs the frame and writes it to a loopback
 * WebSocket until `ws` reports the write done. It is compared with a raw HMAC-SHA256 over the same
 * envelope bytes and with a bare write of the same frame. The receiving WebSocket server runs in a
 * child process and discards what it reads, so its parsing does not run on the measured thread.
 *
 *   npx tsx bench/protocol-ws.bench.ts [rounds] [batches per round]
 */
import { spawn } from "node:child_process"
import { createHmac, randomUUID } from "node:crypto"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { WebSocket } from "ws"
import {
  canonicalEnvelope,
  encodeEvent,
  encodeEventBatchPayload,
  FrameSigner,
  formatPydanticDatetime
} from "../src/protocol/index.js"
import { median } from "./stats.js"

const eventsPerBatch = 500
const rounds = Number(process.argv[2] ?? 7)
const batchesPerRound = Number(process.argv[3] ?? 20)

const secret = new Uint8Array(32).fill(7)
const binding = {
  agentId: "5f0c3a3e-8d52-4b7e-9c1a-2f4b6d8e0a11",
  projectId: "a3c1e7f2-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
  sessionId: "0b9d8c7e-6f5a-4b3c-a2d1-e0f9a8b7c6d5"
}

// The same lifecycle-event shape as the compare bench: eleven fields in data, one non-ASCII string.
const events = Array.from({ length: eventsPerBatch }, (_, index) => ({
  id: randomUUID(),
  kind: "task.succeeded" as const,
  engine: "bullmq",
  task_id: `emails:${100_000 + index}`,
  occurred_at: new Date(Date.UTC(2026, 11, 4, 10, 0, 0, index % 1000)),
  data: {
    queue: "emails",
    name: "send-welcome-email",
    attempt: 1,
    args: [index, "user@example.com"],
    kwargs: { locale: "fr-FR", template: "welcome" },
    worker: "worker-1",
    runtime_ms: 12,
    result: { ok: true, message_id: `m-${index}` },
    note: "déjà envoyé",
    seq: index,
    emitted_us: 1_796_000_000_000_000 + index
  }
}))

const serverSource = `
import { WebSocketServer } from "ws"
const server = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
server.on("connection", (socket) => socket.on("message", () => undefined))
server.on("listening", () => console.log(server.address().port))
`
const root = fileURLToPath(new URL("..", import.meta.url))
const server = spawn(process.execPath, ["--input-type=module", "-e", serverSource], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"]
})
const port = Number((await createInterface({ input: server.stdout! })[Symbol.asyncIterator]().next()).value)
const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject))

const send = (text: string) =>
  new Promise<void>((resolve, reject) => socket.send(text, (error) => (error ? reject(error) : resolve())))

const signer = new FrameSigner(secret, binding)
const now = new Date()
const sample = signer.sign("event_batch", "ev_0123456789ab", encodeEventBatchPayload(events.map(encodeEvent)), now)
const envelope = canonicalEnvelope(sample, binding)

const measure = async (run: () => Promise<void> | void): Promise<number> => {
  const timeRound = async () => {
    const start = process.hrtime.bigint()
    for (let batch = 0; batch < batchesPerRound; batch++) await run()
    return Number(process.hrtime.bigint() - start) / 1e9
  }
  for (let warmup = 0; warmup < 3; warmup++) await timeRound()
  const seconds: Array<number> = []
  for (let round = 0; round < rounds; round++) seconds.push(await timeRound())
  return (eventsPerBatch * batchesPerRound) / median(seconds)
}

let sink = 0
const fullPath = await measure(() =>
  send(signer.sign("event_batch", "ev_0123456789ab", encodeEventBatchPayload(events.map(encodeEvent)), now))
)
const writeOnly = await measure(() => send(sample))
const rawHmac = await measure(() => {
  sink += createHmac("sha256", secret).update(envelope).digest("hex").length
})

socket.close()
server.kill()

const format = (value: number) => `${Math.round(value).toLocaleString("en-US")} events/s`
console.log(
  `protocol + socket bench: ${eventsPerBatch}-event batches, ${Buffer.byteLength(sample)} bytes per signed frame`
)
console.log(`node ${process.version}, ${formatPydanticDatetime(new Date())}`)
console.log(
  `render + join + sign + write  ${format(fullPath)}  (${((1000 * eventsPerBatch) / fullPath).toFixed(2)} ms per batch)`
)
console.log(`write of a signed frame only  ${format(writeOnly)}`)
console.log(`raw createHmac only           ${format(rawHmac)}`)
console.log(`ratio render+sign+write / raw HMAC  ${(fullPath / rawHmac).toFixed(3)}`)
if (sink === 0) console.log("unreachable")
