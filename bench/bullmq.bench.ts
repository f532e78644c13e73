/**
 * Throughput of a no-op BullMQ Worker without and with the adapter attached, in alternating rounds on a
 * private Redis: `npx tsx bench/bullmq.bench.ts [jobs per run] [rounds]`.
 *
 * Each run adds the jobs in bulk, then starts the Worker and times it until every job completed. The
 * adapter runs with its sink rendering each event to JSON, which approximates the agent's own cost per
 * event (the dispatcher and buffer are not included). Three adapter set-ups are measured: Worker events
 * only with a sink that discards them, Worker events only, and Worker events plus the queue's event
 * stream (the default, which reads each added job once).
 */
import { Queue, Worker } from "bullmq"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import * as BullMQ from "../src/engines/bullmq/BullMQ.js"
import type { EventSink } from "../src/engines/EngineAdapter.js"
import { startRedis } from "../test/support/redis.js"
import { median } from "./stats.js"

const jobsPerRun = Number(process.argv[2] ?? 5_000)
const rounds = Number(process.argv[3] ?? 4)
const concurrency = 50

type Variant = "none" | "workers, no render" | "workers" | "workers+events"

const server = await startRedis()
const connection = { host: "127.0.0.1", port: server.port }
let runIndex = 0
let renderedBytes = 0
let renderedEvents = 0

const jsonSink: EventSink = {
  emit: (event) => {
    const text = JSON.stringify({
      kind: event.kind,
      engine: event.engine,
      task_id: event.taskId,
      occurred_at: (event.occurredAt ?? new Date()).toISOString(),
      data: event.data
    })
    renderedBytes += text.length
    renderedEvents++
  },
  registry: () => undefined
}

// Separates the adapter's own cost from the cost of rendering its events.
const discardSink: EventSink = { emit: () => undefined, registry: () => undefined }

const runOnce = async (variant: Variant): Promise<number> => {
  const name = `bench-${process.pid}-${++runIndex}`
  const queue = new Queue(name, { connection })
  const worker = new Worker(name, async () => undefined, { connection, concurrency, autorun: false })
  worker.on("error", () => undefined)
  const scope = Effect.runSync(Scope.make())
  try {
    if (variant !== "none") {
      const adapter = await Effect.runPromise(
        Scope.extend(
          BullMQ.make({ connection, queues: [queue], workers: [worker], queueEvents: variant === "workers+events" }),
          scope
        )
      )
      await Effect.runPromise(
        Scope.extend(adapter.start(variant === "workers, no render" ? discardSink : jsonSink), scope).pipe(
          Logger.withMinimumLogLevel(LogLevel.Warning)
        )
      )
    }
    for (let offset = 0; offset < jobsPerRun; offset += 1_000) {
      const size = Math.min(1_000, jobsPerRun - offset)
      await queue.addBulk(
        Array.from({ length: size }, (_, index) => ({
          name: "noop",
          data: { index: offset + index, payload: "x".repeat(64) }
        }))
      )
    }
    let completed = 0
    const done = new Promise<void>((resolve) => {
      worker.on("completed", () => {
        if (++completed === jobsPerRun) resolve()
      })
    })
    const started = performance.now()
    void worker.run()
    await done
    const seconds = (performance.now() - started) / 1000
    return jobsPerRun / seconds
  } finally {
    await worker.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await queue.obliterate({ force: true })
    await queue.close()
  }
}

const variants: ReadonlyArray<Variant> = ["none", "workers, no render", "workers", "workers+events"]
const results = new Map<Variant, Array<number>>(variants.map((variant) => [variant, []]))

// One warm-up run per variant, not counted.
for (const variant of variants) await runOnce(variant)
renderedBytes = 0
renderedEvents = 0

for (let round = 0; round < rounds; round++) {
  // Rotating the order spreads any drift in the machine's load over every variant.
  const order = variants.map((_, index) => variants[(index + round) % variants.length]!)
  for (const variant of order) {
    const rate = await runOnce(variant)
    results.get(variant)!.push(rate)
  }
  console.log(
    `round ${round + 1}: ${variants.map((variant) => `${variant} ${Math.round(results.get(variant)!.at(-1)!)} jobs/s`).join(", ")}`
  )
}

const baseline = median(results.get("none")!)
console.log(`\n${jobsPerRun} jobs per run, ${rounds} rounds, concurrency ${concurrency}, median jobs/s:`)
for (const variant of variants) {
  const value = median(results.get(variant)!)
  console.log(
    `  ${variant.padEnd(20)} ${Math.round(value).toString().padStart(7)}  ratio ${(value / baseline).toFixed(3)}`
  )
}
console.log(
  `events rendered: ${renderedEvents} (${Math.round(renderedBytes / Math.max(1, renderedEvents))} bytes each)`
)

await server.stop()
