/**
 * Measures a no-op BullMQ Worker's throughput without and with the whole agent attached. The agent
 * part is the BullMQ adapter, the dispatcher, the SQLite buffer and a WebSocket session to a TestBrain in
 * another process. The adapter runs twice: on Worker events only (the default when Workers are given),
 * then on Worker events plus the queue's event stream. Rounds alternate on a private Redis:
 *
 *   npx tsx bench/agent-bullmq.bench.ts [jobs per run] [rounds] [variants, such as 012] [job CPU ms]
 *
 * Each run adds the jobs in bulk, starts the agent (when attached) and waits for its session, then starts
 * the Worker and times it until every job completed. The agent's own catch-up after the last job (its
 * remaining batches and acks) is timed apart and not counted in the Worker's rate.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Queue, Worker } from "bullmq"
import * as BullMQ from "../src/engines/bullmq/BullMQ.js"
import * as Z4j from "../src/layers/Z4j.js"
import { startRedis } from "../test/support/redis.js"
import { median } from "./stats.js"

const jobsPerRun = Number(process.argv[2] ?? 5_000)
const rounds = Number(process.argv[3] ?? 4)
// CPU time each job spends in its processor, busy-waiting: 0 is a no-op job, the agent's worst case.
const jobCpuMillis = Number(process.argv[5] ?? 0)
const settleMillis = 3_500

const processJob = async () => {
  if (jobCpuMillis <= 0) return undefined
  const until = performance.now() + jobCpuMillis
  while (performance.now() < until) {
    // Busy: the job's own work.
  }
  return undefined
}
const concurrency = 50

type Variant = "none" | "agent, workers only" | "agent, workers+events"

const brainChild = spawn(
  process.execPath,
  ["--import", "tsx", fileURLToPath(new URL("compare/brainProcess.ts", import.meta.url))],
  { stdio: ["pipe", "pipe", "inherit"] }
)
const brainLines = createInterface({ input: brainChild.stdout! })[Symbol.asyncIterator]()
const brainAnswer = async () => JSON.parse(String((await brainLines.next()).value)) as Record<string, unknown>
const { agentOptions } = (await brainAnswer()) as {
  agentOptions: { brainUrl: string; token: string; hmacSecret: string; projectId: string }
}

const server = await startRedis()
const connection = { host: "127.0.0.1", port: server.port }
let runIndex = 0
const catchUps: Array<number> = []
// CPU time of this process (the worker, plus the agent when attached) per job: unlike the rate, it does
// not count Redis and the brain, which share this machine's cores but not a real worker's process.
const cpuMicrosPerJob = new Map<Variant, Array<number>>()

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const runOnce = async (variant: Variant): Promise<number> => {
  const name = `agent-bench-${process.pid}-${++runIndex}`
  const queue = new Queue(name, { connection })
  const worker = new Worker(name, processJob, { connection, concurrency, autorun: false })
  worker.on("error", () => undefined)
  const home = mkdtempSync(join(tmpdir(), "z4j-agent-bench-"))
  let agent: Z4j.AgentHandle | undefined
  try {
    for (let offset = 0; offset < jobsPerRun; offset += 1_000) {
      const size = Math.min(1_000, jobsPerRun - offset)
      await queue.addBulk(
        Array.from({ length: size }, (_, index) => ({
          name: "noop",
          data: { index: offset + index, payload: "x".repeat(64) }
        }))
      )
    }
    if (variant !== "none") {
      agent = await Z4j.start({ ...agentOptions, home, buffer: "sqlite", agentName: "bench-bullmq" })
      await agent.registerEngine(
        BullMQ.make({
          connection,
          queues: [queue],
          workers: [worker],
          queueEvents: variant === "agent, workers+events"
        })
      )
      while ((await agent.status()).sessionId === null) await sleep(5)
      // The first seconds of a session carry one-off work (heartbeat and status with adapter health, the
      // registry, the boot schedule snapshot after its 3 s wait for a schedule stream); they are not
      // the per-job cost this bench measures.
      await sleep(settleMillis)
    }
    let completed = 0
    const done = new Promise<void>((resolve) => {
      worker.on("completed", () => {
        if (++completed === jobsPerRun) resolve()
      })
    })
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    void worker.run()
    await done
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpuBefore)
    cpuMicrosPerJob.get(variant)!.push((cpu.user + cpu.system) / jobsPerRun)
    if (agent !== undefined) {
      const finished = performance.now()
      for (;;) {
        const status = await agent.status()
        if (status.buffer.depth === 0 && status.dispatcher.inFlightBatches === 0 && status.dispatcher.ackedTotal > 0) {
          break
        }
        await sleep(5)
      }
      catchUps.push((performance.now() - finished) / 1000)
    }
    return jobsPerRun / seconds
  } finally {
    await worker.close()
    await agent?.stop()
    await queue.obliterate({ force: true })
    await queue.close()
    rmSync(home, { recursive: true, force: true })
  }
}

const allVariants: ReadonlyArray<Variant> = ["none", "agent, workers only", "agent, workers+events"]
// An optional third argument picks variants by index, such as "01" for none and workers only.
const variants =
  process.argv[4] === undefined
    ? allVariants
    : allVariants.filter((_, index) => process.argv[4]!.includes(String(index)))
const results = new Map<Variant, Array<number>>(variants.map((variant) => [variant, []]))
for (const variant of variants) cpuMicrosPerJob.set(variant, [])

for (const variant of variants) await runOnce(variant)
catchUps.length = 0
for (const variant of variants) cpuMicrosPerJob.set(variant, [])

for (let round = 0; round < rounds; round++) {
  // Rotating the order spreads any drift in the machine's load over every variant.
  const order = variants.map((_, index) => variants[(index + round) % variants.length]!)
  for (const variant of order) results.get(variant)!.push(await runOnce(variant))
  console.log(
    `round ${round + 1}: ${variants.map((variant) => `${variant} ${Math.round(results.get(variant)!.at(-1)!)} jobs/s`).join(", ")}`
  )
}

brainChild.stdin!.write(`${JSON.stringify({ op: "count" })}\n`)
const received = (await brainAnswer()).events
// Without the "none" variant there is no baseline, and the ratios print as NaN.
const baseline = variants.includes("none") ? median(results.get("none")!) : Number.NaN
console.log(
  `\n${jobsPerRun} jobs per run, ${rounds} rounds, concurrency ${concurrency}, ${jobCpuMillis} ms of CPU per job, median jobs/s:`
)
const baselineCpu = variants.includes("none") ? median(cpuMicrosPerJob.get("none")!) : Number.NaN
for (const variant of variants) {
  const value = median(results.get(variant)!)
  const cpu = median(cpuMicrosPerJob.get(variant)!)
  console.log(
    `  ${variant.padEnd(22)} ${Math.round(value).toString().padStart(7)}  ratio ${(value / baseline).toFixed(3)}  CPU ${cpu.toFixed(1)} µs/job (+${(cpu - baselineCpu).toFixed(1)})`
  )
}
console.log(
  `agent catch-up after the last job: median ${median(catchUps).toFixed(3)} s; brain received ${String(received)} distinct events`
)

brainChild.stdin!.end()
await server.stop()
