/**
 * This agent side by side with the Python reference agent, z4j-bare, on one machine, against one
 * in-process TestBrain, in one run. Each agent runs in its own child process (ours bundled to plain
 * JavaScript, bare from its pinned virtualenv), both on their SQLite buffers, emitting events of the
 * same shape (eleven fields in `data`, one of them the emit time in microseconds).
 *
 *   npx tsx bench/compare/run.ts [--events 20000] [--rounds 3] [--rate 1000] [--steady-seconds 10]
 *                                [--outage-seconds 60] [--outage-rate 500] [--outage-rounds 1] [--agents ours,bare]
 *                                (`--agents ours,ours-memory,bare` adds this agent on its memory buffer)
 *
 * Figures, each the median over rounds that alternate which agent goes first:
 * - burst: events/s from the first emit until every event is acknowledged and the buffer is empty;
 * - steady: p50/p99 of emit-to-brain-receipt latency at a steady rate (the brain acks each batch as it
 *   receives it, so receipt is when the ack leaves);
 * - memory: each agent process's peak RSS (VmHWM) after its burst and steady runs;
 * - outage: events emitted at a steady rate while a relay in front of the brain resets every connection,
 *   then the time from restoring the relay until the buffer is empty, and the part of it after the
 *   agent reconnected. `--outage-seconds 0` skips it.
 */
import { parseArgs } from "node:util"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { bareVersion, ensureBareVenv } from "../py/venv.js"
import { median } from "../stats.js"
import { type AgentKind, type AgentProcess, type BrainTarget, spawnAgent } from "./agents.js"
import { startRelay } from "./outage.js"

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    rate: { type: "string", default: "1000" },
    "steady-seconds": { type: "string", default: "10" },
    "outage-seconds": { type: "string", default: "60" },
    "outage-rate": { type: "string", default: "500" },
    "outage-rounds": { type: "string", default: "1" },
    agents: { type: "string", default: "ours,bare" }
  }
})
const events = Number(values.events)
const rounds = Number(values.rounds)
const rate = Number(values.rate)
const steadySeconds = Number(values["steady-seconds"])
const outageSeconds = Number(values["outage-seconds"])
const outageRate = Number(values["outage-rate"])
const outageRounds = Number(values["outage-rounds"])
/** An agent as the bench runs it: `ours-memory` is this agent on its memory buffer, the ceiling of the durable one. */
type Variant = AgentKind | "ours-memory"
const variants: ReadonlyArray<Variant> = ["ours", "ours-memory", "bare"]
let kinds = values.agents.split(",").filter((kind): kind is Variant => variants.includes(kind as Variant))

const spawnVariant = (variant: Variant, target: BrainTarget) =>
  variant === "ours-memory" ? spawnAgent("ours", target, { Z4J_BUFFER: "memory" }) : spawnAgent(variant, target)

if (kinds.includes("bare")) {
  try {
    await ensureBareVenv()
  } catch (error) {
    console.error(`z4j-bare left out: ${(error as Error).message}`)
    kinds = kinds.filter((kind) => kind !== "bare")
  }
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))
const mib = (bytes: number) => (bytes / 1_048_576).toFixed(1)

const brain = await TestBrain.start({ heartbeatIntervalSeconds: 10 })

const waitConnected = async (agent: AgentProcess) => {
  const deadline = Date.now() + 30_000
  while (brain.connectedSessions() === 0) {
    if (Date.now() > deadline)
      throw new Error(`the ${agent.kind} agent did not connect: ${agent.stderr().slice(-2000)}`)
    await sleep(5)
  }
}

/** Emit-to-receipt latencies, in ms, of the events the brain received from index `from` on, first copy of each. */
const latencies = (from: number): Array<number> => {
  const receivedAt = new Map<string, number>()
  for (const frame of brain.frames) if (frame.type === "event_batch") receivedAt.set(frame.id, frame.receivedAtMillis)
  const seen = new Set<string>()
  const result: Array<number> = []
  for (let index = from; index < brain.events.length; index++) {
    const event = brain.events[index]!
    if (seen.has(event.id)) continue
    seen.add(event.id)
    const emittedMicros = Number(event.data.emitted_us)
    const received = receivedAt.get(event.batchId)
    if (Number.isFinite(emittedMicros) && received !== undefined) result.push(received - emittedMicros / 1000)
  }
  return result.sort((left, right) => left - right)
}

interface RoundResult {
  readonly eventsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly received: number
  readonly peakRss: number
  readonly idleRss: number
}

const results = new Map<Variant, Array<RoundResult>>(kinds.map((kind) => [kind, []]))

const runRound = async (kind: Variant, target: BrainTarget): Promise<RoundResult> => {
  const agent = await spawnVariant(kind, target)
  try {
    await waitConnected(agent)
    // Warm-up: JIT, SQLite pages, the first batches of the session.
    await agent.request({ op: "burst", count: 1_000 })
    const idle = await agent.request<{ rssBytes: number }>({ op: "memory" })
    const burst = await agent.request<{ totalSeconds: number; drained: boolean; dropped?: number }>({
      op: "burst",
      count: events
    })
    if (!burst.drained) throw new Error(`the ${kind} agent did not drain its burst`)
    // A dropped event would count as delivered in the rate, so a run that drops any is void.
    if ((burst.dropped ?? 0) > 0) throw new Error(`the ${kind} agent dropped ${burst.dropped} events of its burst`)
    const from = brain.events.length
    const steady = await agent.request<{ drained: boolean }>({ op: "steady", rate, seconds: steadySeconds })
    if (!steady.drained) throw new Error(`the ${kind} agent did not drain its steady run`)
    const sorted = latencies(from)
    const memory = await agent.request<{ peakRssBytes: number }>({ op: "memory" })
    return {
      eventsPerSecond: events / burst.totalSeconds,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      received: sorted.length,
      peakRss: memory.peakRssBytes,
      idleRss: idle.rssBytes
    }
  } finally {
    await agent.stop()
  }
}

console.log(
  `compare: ${kinds.join(" vs ")} (z4j-bare ${bareVersion}), ${events} events per burst, ${rounds} rounds, steady ${rate}/s for ${steadySeconds} s`
)
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? kinds : [...kinds].reverse()
  for (const kind of order) {
    const result = await runRound(kind, brain.agentOptions)
    results.get(kind)!.push(result)
    console.log(
      `round ${round + 1} ${kind}: ${Math.round(result.eventsPerSecond)} events/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms (${result.received} events), RSS idle ${mib(result.idleRss)} MiB, peak ${mib(result.peakRss)} MiB`
    )
  }
}

interface OutageResult {
  readonly emitted: number
  readonly catchUpSeconds: number
  readonly afterReconnectSeconds: number
  readonly peakRss: number
}
const outages = new Map<Variant, Array<OutageResult>>(kinds.map((kind) => [kind, []]))

const runOutage = async (kind: Variant): Promise<OutageResult> => {
  const relay = await startRelay(Number(new URL(brain.url).port))
  const agent = await spawnVariant(kind, { ...brain.agentOptions, brainUrl: relay.url })
  try {
    await waitConnected(agent)
    await agent.request({ op: "burst", count: 1_000 })
    relay.setDown(true)
    const answer = agent.request<{ drained: boolean }>({ op: "steady", rate: outageRate, seconds: outageSeconds })
    await sleep(outageSeconds * 1000)
    const depth = await Promise.race([answer.then(() => -1), sleep(1).then(() => 0)])
    if (depth === -1) throw new Error(`the ${kind} agent drained during the outage`)
    relay.setDown(false)
    const restored = performance.now()
    let reconnected = Number.NaN
    const watch = (async () => {
      while (brain.connectedSessions() === 0) await sleep(2)
      reconnected = performance.now()
    })()
    const result = await answer
    const done = performance.now()
    await watch
    if (!result.drained) throw new Error(`the ${kind} agent did not drain after the outage`)
    const memory = await agent.request<{ peakRssBytes: number }>({ op: "memory" })
    return {
      emitted: Math.floor(outageRate * outageSeconds),
      catchUpSeconds: (done - restored) / 1000,
      afterReconnectSeconds: (done - reconnected) / 1000,
      peakRss: memory.peakRssBytes
    }
  } finally {
    await agent.stop()
    await relay.close()
  }
}

if (outageSeconds > 0) {
  console.log(`outage: ${outageRate} events/s for ${outageSeconds} s with the brain unreachable, then restored`)
  for (let round = 0; round < outageRounds; round++) {
    const order = round % 2 === 0 ? kinds : [...kinds].reverse()
    for (const kind of order) {
      const result = await runOutage(kind)
      outages.get(kind)!.push(result)
      console.log(
        `outage round ${round + 1} ${kind}: ${result.emitted} events buffered, caught up ${result.catchUpSeconds.toFixed(2)} s after restore (${result.afterReconnectSeconds.toFixed(2)} s after reconnect), peak RSS ${mib(result.peakRss)} MiB`
      )
    }
  }
}

await brain.stop()

console.log("\nmedians")
const summary = new Map<Variant, Record<string, number>>()
for (const kind of kinds) {
  const list = results.get(kind)!
  const outage = outages.get(kind)!
  const row: Record<string, number> = {
    "events/s": median(list.map((result) => result.eventsPerSecond)),
    "p50 ms": median(list.map((result) => result.p50)),
    "p99 ms": median(list.map((result) => result.p99)),
    "idle RSS MiB": median(list.map((result) => result.idleRss)) / 1_048_576,
    "peak RSS MiB": median(list.map((result) => result.peakRss)) / 1_048_576
  }
  if (outage.length > 0) {
    row["catch-up s"] = median(outage.map((result) => result.catchUpSeconds))
    row["after reconnect s"] = median(outage.map((result) => result.afterReconnectSeconds))
    row["outage peak RSS MiB"] = median(outage.map((result) => result.peakRss)) / 1_048_576
  }
  summary.set(kind, row)
  console.log(
    `${kind}: ${Object.entries(row)
      .map(([name, value]) => `${name} ${value.toFixed(name === "events/s" ? 0 : 2)}`)
      .join(", ")}`
  )
}
const ours = summary.get("ours")
const bare = summary.get("bare")
if (ours && bare) {
  console.log("\nratios (ours / bare)")
  for (const name of Object.keys(ours)) {
    const left = ours[name]
    const right = bare[name]
    if (left !== undefined && right !== undefined) console.log(`${name}: ${(left / right).toFixed(2)}`)
  }
}
