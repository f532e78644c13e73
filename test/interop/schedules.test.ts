import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Queue } from "bullmq"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { eventually } from "../../interop/brain.js"
import type { MintedAgent } from "../../interop/rest.js"
import { type SharedBrain, sharedBrain } from "../../interop/shared.js"
import * as BullMQ from "../../src/engines/bullmq/BullMQ.js"
import * as Z4j from "../../src/layers/Z4j.js"
import { Agent } from "../../src/services/Agent.js"
import * as TcpProxy from "../support/proxy.js"
import { type RedisServer, startRedis } from "../support/redis.js"

interface SchedulePublic {
  readonly id: string
  readonly name: string
  readonly engine: string
  readonly scheduler: string
  readonly kind: string
  readonly expression: string
  readonly timezone: string
  readonly queue: string | null
  readonly task_name: string
  readonly is_enabled: boolean
  readonly args: unknown
}

// The brain keeps one schedule stream per project and scheduler name, so this file uses a scheduler
// name of its own and does not compete with the agent of agent.test.ts.
const schedulerName = "bullmq-schedules"

let brain: SharedBrain
let redis: RedisServer
let home: string
let runtime: ManagedRuntime.ManagedRuntime<Agent, unknown>
let redisClient: Redis
let queue: Queue
let minted: MintedAgent
let proxy: TcpProxy.TcpProxy

const run = <A, E>(effect: Effect.Effect<A, E, Agent>) => runtime.runPromise(effect)

const ours = async () => {
  const response = await brain.rest.get<{ items: Array<SchedulePublic> }>(
    `/api/v1/projects/${brain.slug}/schedules?limit=500`
  )
  expect(response.status, JSON.stringify(response.body)).toBe(200)
  return response.body.items.filter((item) => item.scheduler === schedulerName)
}

const connectsTotal = () =>
  run(Effect.flatMap(Agent, (agent) => Effect.map(agent.status, (status) => status.connection.connectsTotal)))

const namesAre = (names: ReadonlyArray<string>) =>
  eventually(`the brain's schedules of ${schedulerName} to be ${names.join(", ")}`, async () => {
    const items = await ours()
    const found = items.map((item) => item.name).sort()
    return JSON.stringify(found) === JSON.stringify([...names].sort()) ? items : undefined
  })

beforeAll(async () => {
  brain = sharedBrain()
  redis = await startRedis()
  home = mkdtempSync(join(tmpdir(), "z4j-interop-schedules-"))
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: null })
  queue = new Queue("reports", { connection: redisClient })
  await queue.upsertJobScheduler(
    "nightly",
    { pattern: "0 3 * * *", tz: "Europe/Paris" },
    { name: "reports.build", data: { scope: "all" } }
  )
  await queue.upsertJobScheduler("hourly", { every: 3_600_000 }, { name: "reports.refresh" })
  minted = await brain.mintAgent("ts-interop-schedules")
  proxy = await TcpProxy.start(brain.baseUrl)
  await startAgent()
}, 600_000)

/** Starts the agent process: a new worker id, so a new session and a new stream epoch on the brain. */
const startAgent = async () => {
  const bullmq = Layer.scopedDiscard(
    Effect.gen(function* () {
      const adapter = yield* BullMQ.make({
        connection: redisClient,
        queues: [queue],
        queueEvents: false,
        schedulerName
      })
      const agent = yield* Agent
      yield* agent.registerEngine(adapter)
    })
  )
  const layer = bullmq.pipe(
    Layer.provideMerge(
      Z4j.layer({ ...brain.agentOptions(minted), brainUrl: proxy.url, home, agentName: "ts-interop-schedules" })
    )
  )
  runtime = ManagedRuntime.make(layer as Layer.Layer<Agent, unknown>)
  await run(Effect.void)
}

afterAll(async () => {
  await runtime?.dispose()
  await proxy?.close()
  await queue?.close()
  redisClient?.disconnect()
  await redis?.stop()
  if (home) rmSync(home, { recursive: true, force: true })
})

describe("schedules with the real brain", () => {
  it("job schedulers appear in brain schedules", async () => {
    const items = await namesAre(["reports:hourly", "reports:nightly"])
    const nightly = items.find((item) => item.name === "reports:nightly")!
    expect(nightly).toMatchObject({
      engine: "bullmq",
      scheduler: schedulerName,
      kind: "cron",
      expression: "0 3 * * *",
      timezone: "Europe/Paris",
      queue: "reports",
      task_name: "reports.build",
      is_enabled: true,
      args: [{ scope: "all" }]
    })
    const hourly = items.find((item) => item.name === "reports:hourly")!
    expect(hourly).toMatchObject({ kind: "interval", expression: "3600000ms", task_name: "reports.refresh" })

    // The projection is acknowledged like any event, and no legacy snapshot was sent and rejected.
    const status = await eventually("every event acknowledged", () =>
      run(
        Effect.flatMap(Agent, (agent) =>
          Effect.map(agent.status, (status) =>
            status.dispatcher.inFlightBatches === 0 && status.buffer.depth === 0 ? status : undefined
          )
        )
      )
    )
    expect(status.connection.scheduleSnapshotsRefused).toBeNull()
    expect(status.buffer.discardedTotal).toBe(0)
    expect(status.droppedEvents).toBe(0)
  })

  it("reconnect adds and removes schedules", async () => {
    await namesAre(["reports:hourly", "reports:nightly"])
    await queue.removeJobScheduler("hourly")
    await queue.upsertJobScheduler("weekly", { pattern: "0 6 * * 1" }, { name: "reports.digest" })
    const connects = await connectsTotal()
    proxy.cutAll()
    await eventually("a new session", async () => ((await connectsTotal()) > connects ? true : undefined))
    const items = await namesAre(["reports:nightly", "reports:weekly"])
    expect(items.find((item) => item.name === "reports:weekly")).toMatchObject({
      kind: "cron",
      expression: "0 6 * * 1",
      task_name: "reports.digest"
    })
  })

  it("restart removes a schedule removed while stopped", async () => {
    // z4j 1.13.0 rejects a complete snapshot that deletes, at the start of a new epoch, a row of the
    // previous epoch (trigger z4j_schedule_external_delete_guard_v1), and drops the whole projection. The
    // agent stored what the brain acknowledged last, so the new process lists the removed schedule once
    // more at sequence 1 and deletes it at sequence 2.
    await namesAre(["reports:nightly", "reports:weekly"])
    await runtime.dispose()
    await queue.removeJobScheduler("weekly")
    await queue.upsertJobScheduler("monthly", { pattern: "0 5 1 * *" }, { name: "reports.archive" })
    await startAgent()
    await namesAre(["reports:monthly", "reports:nightly"])
    // Both projections were taken: no batch waits for an acknowledgement the brain withholds.
    await eventually("every event acknowledged", () =>
      run(
        Effect.flatMap(Agent, (agent) =>
          Effect.map(agent.status, (status) =>
            status.dispatcher.inFlightBatches === 0 && status.buffer.depth === 0 ? true : undefined
          )
        )
      )
    )
  })

  it("restart adds a schedule back", async () => {
    await runtime.dispose()
    await queue.upsertJobScheduler("weekly", { pattern: "0 6 * * 1" }, { name: "reports.digest" })
    await startAgent()
    await namesAre(["reports:monthly", "reports:nightly", "reports:weekly"])
  })

  it("REST disable fails and faults the stream", async () => {
    // z4j 1.13 sends schedule.external.control to enable or disable a projected schedule. This agent
    // fails that command, so the schedule stays enabled on the brain.
    const items = await namesAre(["reports:monthly", "reports:nightly", "reports:weekly"])
    const nightly = items.find((item) => item.name === "reports:nightly")!
    const issued = await brain.rest.post(`/api/v1/projects/${brain.slug}/schedules/${nightly.id}/disable`, {})
    expect(issued.status, JSON.stringify(issued.body)).toBe(202)
    const control = await eventually("the control command to fail", async () => {
      const response = await brain.rest.get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/projects/${brain.slug}/commands?limit=50`
      )
      return response.body.items.find((item) => item.action === "schedule.external.control" && item.status === "failed")
    })
    expect(String(control.error)).toContain("not implemented by this agent")
    expect((await ours()).find((item) => item.name === "reports:nightly")?.is_enabled).toBe(true)

    // The failed control leaves the stream faulted: a new session gets no activation for it.
    const activations = async () => {
      const response = await brain.rest.get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/projects/${brain.slug}/commands?limit=50`
      )
      return response.body.items.filter((item) => item.action === "schedule.external.activate").length
    }
    const before = await activations()
    const connects = await connectsTotal()
    proxy.cutAll()
    await eventually("a new session", async () => ((await connectsTotal()) > connects ? true : undefined))
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    expect(await activations()).toBe(before)
  })
})
