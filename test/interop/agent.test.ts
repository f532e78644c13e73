import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Queue, Worker } from "bullmq"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { eventually } from "../../interop/brain.js"
import type { CommandRow, TaskRow } from "../../interop/rest.js"
import { type SharedBrain, sharedBrain } from "../../interop/shared.js"
import * as BullMQ from "../../src/engines/bullmq/BullMQ.js"
import { Tasks } from "../../src/engines/effect/index.js"
import * as Z4j from "../../src/layers/Z4j.js"
import { Agent } from "../../src/services/Agent.js"
import { type RedisServer, startRedis } from "../support/redis.js"

let brain: SharedBrain
let redis: RedisServer
let home: string
let runtime: ManagedRuntime.ManagedRuntime<Agent | Tasks.Tasks, unknown>
let redisClient: Redis
let queue: Queue
let worker: Worker

const run = <A, E>(effect: Effect.Effect<A, E, Agent | Tasks.Tasks>) => runtime.runPromise(effect)

const task = (engine: string, taskId: string) =>
  brain.rest.get<TaskRow>(`/api/v1/projects/${brain.slug}/tasks/${engine}/${encodeURIComponent(taskId)}`)

const taskIn = (engine: string, taskId: string, states: ReadonlyArray<string>) =>
  eventually(`task ${engine}/${taskId} in state ${states.join(" or ")}`, async () => {
    const response = await task(engine, taskId)
    return response.status === 200 && states.includes(response.body.state) ? response.body : undefined
  })

const issue = async (path: string, body: Record<string, unknown>) =>
  brain.rest.post<CommandRow>(`/api/v1/projects/${brain.slug}/commands/${path}`, {
    agent_id: brain.agent.agentId,
    ...body
  })

const finished = (id: string) =>
  eventually(
    `command ${id} to finish`,
    async () => {
      const response = await brain.rest.get<CommandRow>(`/api/v1/projects/${brain.slug}/commands/${id}`)
      return ["completed", "failed", "timeout"].includes(response.body.status) ? response.body : undefined
    },
    70_000
  )

beforeAll(async () => {
  brain = sharedBrain()
  redis = await startRedis()
  home = mkdtempSync(join(tmpdir(), "z4j-interop-agent-"))
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: null })
  queue = new Queue("emails", { connection: redisClient })
  // Created before the agent starts, so its boot snapshot carries it.
  await queue.upsertJobScheduler(
    "nightly-digest",
    { pattern: "0 3 * * *" },
    { name: "digest", data: { kind: "daily" } }
  )
  worker = new Worker(
    "emails",
    async (job) => {
      if (job.data.fail === true) throw new Error("mailbox full")
      return { sent: job.data.to }
    },
    { connection: redisClient.duplicate() }
  )
  const bullmq = Layer.scopedDiscard(
    Effect.gen(function* () {
      const adapter = yield* BullMQ.make({
        connection: redisClient,
        queues: [queue],
        workers: [worker],
        queueEvents: false
      })
      const agent = yield* Agent
      yield* agent.registerEngine(adapter)
    })
  )
  const layer = Layer.mergeAll(Tasks.layer({ queue: "interop" }), bullmq).pipe(
    Layer.provideMerge(
      Z4j.layer({ ...brain.agentOptions(), home, agentName: "ts-interop", framework: "effect", workerRole: "task" })
    )
  )
  runtime = ManagedRuntime.make(layer as Layer.Layer<Agent | Tasks.Tasks, unknown>)
  await run(Effect.void)
}, 600_000)

afterAll(async () => {
  await runtime?.dispose()
  await worker?.close()
  await queue?.close()
  redisClient?.disconnect()
  await redis?.stop()
  if (home) rmSync(home, { recursive: true, force: true })
})

describe("interop with the real brain", () => {
  it("agent and worker come online with our framework, engines and capabilities", async () => {
    const agent = await eventually("the agent to be online", async () => {
      const response = await brain.rest.get<Array<Record<string, unknown>>>(`/api/v1/projects/${brain.slug}/agents`)
      const found = response.body.find((row) => row.id === brain.agent.agentId)
      return found?.state === "online" && (found.engine_adapters as Array<string>).length === 2 ? found : undefined
    })
    expect(agent.framework_adapter).toBe("effect")
    expect(agent.protocol_version).toBe("2")
    expect(agent.host_name).toBe("ts-interop")
    expect(agent.engine_adapters).toEqual(["bullmq", "effect"])
    const capabilities = agent.capabilities as Record<string, Array<string>>
    expect(capabilities.effect).toContain("cancel_task")
    expect(capabilities.bullmq).toContain("cancel_task")
    const workers = await brain.rest.get<Array<Record<string, unknown>>>(
      `/api/v1/projects/${brain.slug}/agent-workers?state=online`
    )
    expect(workers.status).toBe(200)
    const mine = workers.body.find((row) => row.agent_id === brain.agent.agentId)
    expect(mine?.worker_id).toMatch(/^effect-\d+-\d+$/)
    expect(mine?.pid).toBe(process.pid)
    expect(mine?.role).toBe("task")
  })

  it("effect task events become tasks with states, names, queues, args and results", async () => {
    const ids = await run(
      Effect.gen(function* () {
        const tasks = yield* Tasks.Tasks
        const ok = yield* tasks.submit("interop.add", { args: [2, 3] }).pipe(Effect.orDie)
        const bad = yield* tasks.submit("interop.fail", { args: ["x"], queue: "critical" }).pipe(Effect.orDie)
        yield* Effect.exit(ok.fiber.await)
        yield* Effect.exit(bad.fiber.await)
        return { ok: ok.taskId, bad: bad.taskId }
      }).pipe(
        Effect.provide(
          Layer.effectDiscard(
            Effect.flatMap(Tasks.Tasks, (tasks) =>
              Effect.all([
                tasks.register("interop.add", (args) => Effect.succeed(Number(args[0]) + Number(args[1]))),
                tasks.register("interop.fail", () => Effect.fail(new Error("refused by upstream")))
              ]).pipe(Effect.orDie)
            )
          )
        )
      )
    )
    const succeeded = await taskIn("effect", ids.ok, ["success"])
    expect(succeeded.name).toBe("interop.add")
    expect(succeeded.queue).toBe("interop")
    expect(succeeded.args).toEqual([2, 3])
    expect(succeeded.result).toBe(5)
    expect(typeof succeeded.runtime_ms).toBe("number")
    expect(succeeded.worker_name).toMatch(/^effect@/)
    const failed = await taskIn("effect", ids.bad, ["failure"])
    expect(failed.name).toBe("interop.fail")
    expect(failed.queue).toBe("critical")
    expect(failed.exception).toContain("refused by upstream")
  })

  it("bullmq job events become tasks", async () => {
    const ok = await queue.add("send-welcome", { to: "user-42" })
    const bad = await queue.add("send-welcome", { to: "user-43", fail: true })
    const succeeded = await taskIn("bullmq", `emails:${ok.id}`, ["success"])
    expect(succeeded.name).toBe("send-welcome")
    expect(succeeded.queue).toBe("emails")
    expect(succeeded.result).toEqual({ sent: "user-42" })
    const failed = await taskIn("bullmq", `emails:${bad.id}`, ["failure"])
    expect(failed.exception).toContain("mailbox full")
  })

  it("every event batch is acknowledged", async () => {
    const status = await eventually("every event acknowledged", () =>
      run(
        Effect.flatMap(Agent, (agent) =>
          Effect.map(agent.status, (status) =>
            status.dispatcher.acceptedTotal > 0 && status.dispatcher.inFlightBatches === 0 && status.buffer.depth === 0
              ? status
              : undefined
          )
        )
      )
    )
    // Events the agent discarded, if any, are not acknowledged.
    expect(status.dispatcher.ackedTotal).toBe(status.dispatcher.acceptedTotal - status.buffer.discardedTotal)
  })

  it("heartbeats keep the socket open and last_seen advances", async () => {
    const lastSeen = async () => {
      const response = await brain.rest.get<Array<Record<string, unknown>>>(`/api/v1/projects/${brain.slug}/agents`)
      return String(response.body.find((row) => row.id === brain.agent.agentId)?.last_seen_at)
    }
    const before = await lastSeen()
    const connectsBefore = await run(
      Effect.flatMap(Agent, (agent) => Effect.map(agent.status, (s) => s.connection.connectsTotal))
    )
    // The brain closes a socket with no frame for 90 s and counts an agent offline after 30 s without one;
    // 25 s spans two heartbeat intervals of 10 s.
    await new Promise((resolve) => setTimeout(resolve, 25_000))
    const after = await lastSeen()
    const status = await run(Effect.flatMap(Agent, (agent) => agent.status))
    expect(status.connection.connectsTotal).toBe(connectsBefore)
    expect(status.connection.phase).toBe("connected")
    expect(after > before).toBe(true)
  }, 60_000)

  it("cancel-task reaches the effect engine and the task is revoked", async () => {
    const handle = await run(
      Effect.flatMap(Tasks.Tasks, (tasks) =>
        Effect.gen(function* () {
          yield* tasks
            .register("interop.long", () => Effect.as(Effect.sleep(Duration.minutes(5)), "late"))
            .pipe(Effect.ignore)
          return yield* tasks.submit("interop.long").pipe(Effect.orDie)
        })
      )
    )
    await taskIn("effect", handle.taskId, ["started"])
    const issued = await issue("cancel-task", { engine: "effect", task_id: handle.taskId })
    expect(issued.status, JSON.stringify(issued.body)).toBe(202)
    const command = await finished(issued.body.id)
    expect(command.status).toBe("completed")
    expect(command.result?.cancelled).toBe(true)
    await taskIn("effect", handle.taskId, ["revoked"])
  })

  it("cancel-task reaches the bullmq engine", async () => {
    const delayed = await queue.add("send-later", { to: "user-44" }, { delay: 600_000 })
    const issued = await issue("cancel-task", { engine: "bullmq", task_id: `emails:${delayed.id}` })
    expect(issued.status, JSON.stringify(issued.body)).toBe(202)
    const command = await finished(issued.body.id)
    expect(command.status).toBe("completed")
    expect(await queue.getJob(delayed.id!)).toBeUndefined()
  })

  it("retry-task and bulk-retry re-run a failed bullmq job", async () => {
    const bad = await queue.add("send-welcome", { to: "user-45", fail: true })
    const taskId = `emails:${bad.id}`
    await taskIn("bullmq", taskId, ["failure"])
    const runs = async () => (await queue.getJob(bad.id!))?.processedOn ?? 0
    const firstRun = await runs()

    // This brain sends a retry of a non-native engine only with both override halves; empty ones
    // leave the adapter retrying the job from its own data in Redis.
    const retry = await issue("retry-task", {
      engine: "bullmq",
      task_id: taskId,
      override_args: [],
      override_kwargs: {}
    })
    expect(retry.status, JSON.stringify(retry.body)).toBe(202)
    const retried = await finished(retry.body.id)
    expect(retried.status, JSON.stringify(retried)).toBe("completed")
    expect(retried.result?.action).toBe("retried")
    const secondRun = await eventually("the retried job to run again", async () => {
      const job = await queue.getJob(bad.id!)
      return job !== undefined && (job.processedOn ?? 0) > firstRun && (await job.getState()) === "failed"
        ? job.processedOn
        : undefined
    })

    const bulk = await issue("bulk-retry", { filter: { engine: "bullmq", task_ids: [taskId] } })
    expect(bulk.status, JSON.stringify(bulk.body)).toBe(202)
    const bulkResult = await finished(bulk.body.id)
    expect(bulkResult.status, JSON.stringify(bulkResult)).toBe("completed")
    expect(bulkResult.result?.retried).toBe(1)
    await eventually("the bulk-retried job to run again", async () =>
      (await runs()) > (secondRun ?? 0) ? true : undefined
    )
  })

  it("retry-task with both override halves re-runs an effect task", async () => {
    const failed = await run(
      Effect.flatMap(Tasks.Tasks, (tasks) =>
        Effect.gen(function* () {
          yield* tasks
            .register("interop.echo", (args) =>
              args[0] === "bad" ? Effect.fail(new Error("bad input")) : Effect.succeed({ echoed: args[0] })
            )
            .pipe(Effect.ignore)
          const handle = yield* tasks.submit("interop.echo", { args: ["bad"] }).pipe(Effect.orDie)
          yield* Effect.exit(handle.fiber.await)
          return handle.taskId
        })
      )
    )
    await taskIn("effect", failed, ["failure"])
    const issued = await issue("retry-task", {
      engine: "effect",
      task_id: failed,
      override_args: ["good"],
      override_kwargs: {}
    })
    expect(issued.status, JSON.stringify(issued.body)).toBe(202)
    const command = await finished(issued.body.id)
    expect(command.status).toBe("completed")
    const retried = await taskIn("effect", String(command.result?.new_task_id), ["success"])
    expect(retried.result).toEqual({ echoed: "good" })
  })

  it("rate-limit round trips, and restart-worker is refused without a native restart", async () => {
    const rate = await issue("rate-limit", { task_name: "send-welcome", rate: "10/m" })
    expect(rate.status, JSON.stringify(rate.body)).toBe(202)
    const rateResult = await finished(rate.body.id)
    expect(rateResult.status).toBe("completed")
    // z4j 1.13 sends restart-worker only to an agent that reported the worker through worker.* events
    // and advertises restart_worker for its engine; neither engine here can restart its host.
    const restart = await issue("restart-worker", { engine: "effect", worker_name: "ts-interop" })
    expect(restart.status).toBe(422)
    expect(JSON.stringify(restart.body)).toContain("worker target is missing or ambiguous")
  })

  it("boot schedule projection is stored", async () => {
    // z4j 1.13 rejects legacy schedule.snapshot events. It hands the agent a schedule stream after the
    // handshake, and the agent sends a complete projection (schedules.test.ts checks more cases).
    const schedules = await eventually("the job scheduler in the brain's schedules", async () => {
      const response = await brain.rest.get<{ items: Array<Record<string, unknown>> }>(
        `/api/v1/projects/${brain.slug}/schedules`
      )
      return response.body.items.some((item) => item.name === "emails:nightly-digest") ? response.body.items : undefined
    })
    expect(schedules.find((item) => item.name === "emails:nightly-digest")).toMatchObject({
      engine: "bullmq",
      scheduler: "bullmq",
      kind: "cron",
      expression: "0 3 * * *",
      task_name: "digest"
    })
    const status = await run(Effect.flatMap(Agent, (agent) => agent.status))
    expect(status.connection.scheduleSnapshotsRefused).toBeNull()
  })
})
