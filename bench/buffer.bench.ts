/**
 * Throughput of the event buffer backends, side by side in one run: appends of ~400-byte bodies in
 * batches of 100 and of 1, then the dispatcher's drain loop (read 500 after a cursor, remove them). The
 * SQLite buffer writes to a fresh folder under the system temp folder, so the figures depend on that
 * file system.
 *
 * Run with `npx tsx bench/buffer.bench.ts` (or `npm run bench -- buffer`).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import type * as Scope from "effect/Scope"
import * as Memory from "../src/services/EventBuffer/Memory.js"
import * as Sqlite from "../src/services/EventBuffer/Sqlite.js"
import type { EventBufferShape } from "../src/services/EventBuffer.js"
import { median } from "./stats.js"

const rounds = 3
const bodyBytes = 400

/** Bodies shaped like a redacted lifecycle event, padded to `bodyBytes`. */
const makeBodies = (count: number): Array<string> =>
  Array.from({ length: count }, (_, index) => {
    const head = `{"data":{"queue":"emails","task_name":"send-welcome-email","worker":"worker-1@host-a"},"engine":"bullmq","id":"${index}","kind":"task.succeeded","pad":"`
    return `${head}${"x".repeat(bodyBytes - head.length - 2)}"}`
  })

interface Backend {
  readonly name: string
  readonly open: (folder: string) => Effect.Effect<EventBufferShape, Sqlite.BufferUnavailableError, Scope.Scope>
}

// Caps far above the event counts, so no run measures eviction.
const caps = { maxEvents: 10_000_000, maxBytes: 8 * 1024 * 1024 * 1024 }
const backends: ReadonlyArray<Backend> = [
  { name: "Memory", open: () => Memory.make(caps) },
  { name: "Sqlite", open: (folder) => Sqlite.make({ home: folder, agentKey: "bench", ...caps }) }
]

/** Runs `body` against a fresh buffer per round and returns the median events per second. */
const measure = (
  backend: Backend,
  events: number,
  prepare: (buffer: EventBufferShape) => Effect.Effect<void>,
  body: (buffer: EventBufferShape) => Effect.Effect<void>
): Effect.Effect<number, Sqlite.BufferUnavailableError> =>
  Effect.gen(function* () {
    const rates: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      const folder = mkdtempSync(join(tmpdir(), "z4j-buffer-bench-"))
      try {
        const rate = yield* Effect.scoped(
          Effect.gen(function* () {
            const buffer = yield* backend.open(folder)
            yield* prepare(buffer)
            const start = process.hrtime.bigint()
            yield* body(buffer)
            return events / (Number(process.hrtime.bigint() - start) / 1e9)
          })
        )
        rates.push(rate)
      } finally {
        rmSync(folder, { recursive: true, force: true })
      }
    }
    return median(rates)
  })

const appendInBatches = (bodies: ReadonlyArray<string>, batchSize: number) => (buffer: EventBufferShape) =>
  Effect.gen(function* () {
    for (let offset = 0; offset < bodies.length; offset += batchSize) {
      yield* buffer.append(bodies.slice(offset, offset + batchSize))
    }
  })

const drain = (buffer: EventBufferShape) =>
  Effect.gen(function* () {
    let cursor = 0
    for (;;) {
      const entries = yield* buffer.read(cursor, 500, 1024 * 1024)
      if (entries.length === 0) return
      cursor = entries[entries.length - 1]!.id
      yield* buffer.remove(entries.map((entry) => entry.id))
    }
  })

const program = Effect.gen(function* () {
  const batched = makeBodies(100_000)
  const single = makeBodies(20_000)
  const drained = makeBodies(100_000)
  const noPrepare = () => Effect.void
  const rows: Array<[string, string, string]> = []
  const results = new Map<string, Map<string, number>>()
  for (const backend of backends) {
    const rates = new Map<string, number>()
    rates.set(
      "append, batches of 100",
      yield* measure(backend, batched.length, noPrepare, appendInBatches(batched, 100))
    )
    rates.set("append, batches of 1", yield* measure(backend, single.length, noPrepare, appendInBatches(single, 1)))
    rates.set("read 500 + remove", yield* measure(backend, drained.length, appendInBatches(drained, 100), drain))
    results.set(backend.name, rates)
  }
  for (const path of results.get("Memory")!.keys()) {
    const format = (name: string) => `${Math.round(results.get(name)!.get(path)!).toLocaleString("en-US")} events/s`
    rows.push([path, format("Sqlite"), format("Memory")])
  }

  console.log(`buffer bench: ${bodyBytes}-byte bodies, median of ${rounds} rounds, folder under ${tmpdir()}`)
  console.log(
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, ${new Date().toISOString()}`
  )
  console.log(`${"path".padEnd(26)}${"Sqlite".padStart(20)}${"Memory".padStart(22)}`)
  for (const [path, sqlite, memory] of rows)
    console.log(`${path.padEnd(26)}${sqlite.padStart(20)}${memory.padStart(22)}`)
})

Effect.runPromise(program.pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
