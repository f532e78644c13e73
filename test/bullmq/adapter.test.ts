import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Discovery from "../../src/engines/bullmq/Discovery.js"
import { command, memorySink, queueName, redisFixture, run, sleep, waitUntil } from "./support.js"

const redis = redisFixture()
beforeAll(redis.start)
afterEach(redis.cleanup)
afterAll(redis.stop)

describe("BullMQ schedules", () => {
  it("snapshot, disable, enable, trigger, delete", async () => {
    const name = queueName("sched")
    const queue = redis.queue(name)
    await queue.upsertJobScheduler(
      "nightly",
      { pattern: "0 3 * * *", tz: "Europe/Paris" },
      {
        name: "report",
        data: { kind: "daily" }
      }
    )
    await queue.upsertJobScheduler("poll", { every: 60_000 }, { name: "poll-feed" })
    const { adapter } = await redis.adapter({ queues: [name], queueEvents: false }, memorySink().sink)
    const scheduler = adapter.scheduler!
    const snapshot = () => Effect.runPromise(scheduler.snapshot)
    const execute = (action: string, parameters: Record<string, unknown>) =>
      Effect.runPromise(Effect.either(scheduler.execute(command(action, parameters, { type: "schedule", id: "uuid" }))))

    const first = await snapshot()
    expect(first.map((entry) => entry.name).sort()).toEqual([`${name}:nightly`, `${name}:poll`])
    const nightly = first.find((entry) => entry.name === `${name}:nightly`)!
    expect(nightly).toMatchObject({
      task_name: "report",
      kind: "cron",
      expression: "0 3 * * *",
      timezone: "Europe/Paris",
      queue: name,
      args: [{ kind: "daily" }],
      is_enabled: true,
      external_id: "nightly"
    })
    expect(typeof nightly.next_run_at).toBe("string")
    expect(first.find((entry) => entry.name === `${name}:poll`)).toMatchObject({
      kind: "interval",
      expression: "60000ms"
    })

    // The brain puts the schedule name in schedule_id.
    expect(Either.getOrThrow(await execute("schedule.disable", { schedule_id: `${name}:nightly` }))).toMatchObject({
      is_enabled: false,
      changed: true
    })
    expect(await queue.getJobScheduler("nightly")).toBeUndefined()
    const disabled = (await snapshot()).find((entry) => entry.name === `${name}:nightly`)!
    expect(disabled.is_enabled).toBe(false)
    expect(disabled.next_run_at).toBeNull()

    const triggered = Either.getOrThrow(
      await execute("schedule.trigger_now", { schedule_name: `${name}:nightly` })
    ) as {
      task_id: string
    }
    const [, jobId] = triggered.task_id.split(":")
    expect((await queue.getJob(jobId!))!.data).toEqual({ kind: "daily" })

    expect(Either.getOrThrow(await execute("schedule.enable", { schedule_id: `${name}:nightly` }))).toMatchObject({
      is_enabled: true,
      changed: true
    })
    const restored = await queue.getJobScheduler("nightly")
    expect(restored).toMatchObject({ pattern: "0 3 * * *", tz: "Europe/Paris", name: "report" })
    expect(restored!.template?.data).toEqual({ kind: "daily" })

    expect(Either.getOrThrow(await execute("schedule.delete", { external_id: "poll" }))).toMatchObject({
      deleted: true
    })
    expect(await queue.getJobScheduler("poll")).toBeUndefined()
    expect((await snapshot()).map((entry) => entry.name)).toEqual([`${name}:nightly`])

    const missing = await execute("schedule.enable", { schedule_id: `${name}:nope` })
    expect(Either.isLeft(missing)).toBe(true)
  })

  it("snapshot fails rather than returning part", async () => {
    const name = queueName("sched-fail")
    const client = redis.client()
    const { adapter } = await redis.adapter(
      { queues: [name], queueEvents: false, connection: client },
      memorySink().sink
    )
    // A key of the wrong type makes BullMQ's scheduler listing fail.
    await client.set(`bull:${name}:repeat`, "not a sorted set")
    const result = await Effect.runPromise(Effect.either(adapter.scheduler!.snapshot))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("WRONGTYPE")
  })
})

describe("BullMQ resume", () => {
  it("no event lost or duplicated across a restart", async () => {
    const name = queueName("resume")
    const queue = redis.queue(name)
    redis.worker(name, async (job) => `done ${job.id}`)
    const events = memorySink()
    const first = await redis.adapter({ queues: [name], cursorSaveInterval: "50 millis" }, events.sink)
    const before = await Promise.all([1, 2, 3].map((n) => queue.add("job", { n })))
    await waitUntil(() => before.every((job) => events.of(`${name}:${job.id}`, "task.succeeded").length === 1))
    await first.stop()

    const during = await Promise.all([4, 5, 6].map((n) => queue.add("job", { n })))
    await waitUntil(async () => (await queue.getCompletedCount()) === 6, 5_000, "jobs to complete while stopped")
    await redis.adapter({ queues: [name], cursorSaveInterval: "50 millis" }, events.sink)
    const after = await queue.add("job", { n: 7 })
    const all = [...before, ...during, after]
    await waitUntil(() => all.every((job) => events.of(`${name}:${job.id}`, "task.succeeded").length >= 1))
    await sleep(200)

    for (const job of all) {
      const taskId = `${name}:${job.id}`
      expect(events.of(taskId, "task.received"), taskId).toHaveLength(1)
      expect(events.of(taskId, "task.started"), taskId).toHaveLength(1)
      expect(events.of(taskId, "task.succeeded"), taskId).toHaveLength(1)
    }
    const cursor = await redis.client().hget("bull:z4j-agent:bullmq", `cursor:${name}`)
    expect(cursor).toMatch(/^\d+-\d+$/)
  })

  it("replacement adapter skips no entry", async () => {
    const watched = queueName("watched")
    const created = queueName("created")
    const events = memorySink()
    const seed = await redis.queue(watched).add("seed", {})
    const first = await redis.adapter({ queues: [watched], cursorSaveInterval: "50 millis" }, events.sink)
    // The first adapter reports no entry, so only the cursor it started from is saved when it stops.
    await first.stop()
    const whileStopped = await redis.queue(watched).add("while-stopped", {})
    const early = await redis.queue(created).add("early", {})

    await redis.adapter(
      { queues: [watched, created], readFromStreamStart: [created], cursorSaveInterval: "50 millis" },
      events.sink
    )
    const later = await redis.queue(created).add("later", {})
    const reported = [`${watched}:${whileStopped.id}`, `${created}:${early.id}`, `${created}:${later.id}`]
    await waitUntil(() => reported.every((taskId) => events.of(taskId, "task.received").length >= 1))
    await sleep(200)

    for (const taskId of reported) expect(events.of(taskId, "task.received"), taskId).toHaveLength(1)
    expect(events.of(`${watched}:${seed.id}`, "task.received")).toHaveLength(0)
  })

  it("trimmed stream is reconciled", async () => {
    const name = queueName("trimmed")
    const queue = redis.queue(name)
    const client = redis.client()
    const events = memorySink()
    const first = await redis.adapter({ queues: [name], cursorSaveInterval: "50 millis" }, events.sink)
    await queue.add("seed", {})
    await waitUntil(() => events.events.some((event) => event.kind === "task.received"), 5_000, "the first event")
    await first.stop()

    const worker = redis.worker(name, async () => "while away")
    const missed = await queue.add("missed", {})
    await waitUntil(async () => (await queue.getCompletedCount()) === 2, 5_000, "jobs to complete while stopped")
    await worker.close()
    // Trim every entry, as BullMQ's MAXLEN does on a busy queue.
    await client.xtrim(`bull:${name}:events`, "MAXLEN", 0)
    await queue.add("after-trim", {}, { delay: 60_000 })

    await redis.adapter({ queues: [name] }, events.sink)
    const taskId = `${name}:${missed.id}`
    await waitUntil(() => events.of(taskId, "task.succeeded").length === 1, 5_000, "the reconciled job")
    expect(events.of(taskId, "task.received")).toHaveLength(1)
    expect(events.of(taskId, "task.succeeded")[0]!.data.result).toBe("while away")
  })
})

describe("BullMQ adapters", () => {
  it("two adapters under two names", async () => {
    const left = queueName("left")
    const right = queueName("right")
    const events = memorySink()
    const a = await redis.adapter({ queues: [left], queueEvents: false }, events.sink)
    const b = await redis.adapter({ name: "billing", queues: [right], queueEvents: false }, events.sink)
    const leftWorker = redis.worker(left, async () => "l", { autorun: false })
    const rightWorker = redis.worker(right, async () => "r", { autorun: false })
    const aWithWorker = await redis.adapter(
      { name: "bullmq-left", queues: [left], workers: [leftWorker], queueEvents: false },
      events.sink
    )
    const bWithWorker = await redis.adapter(
      { name: "billing-2", queues: [right], workers: [rightWorker], queueEvents: false },
      events.sink
    )
    void leftWorker.run()
    void rightWorker.run()

    const leftJob = await redis.queue(left).add("x", {})
    const rightJob = await redis.queue(right).add("x", {})
    await waitUntil(() => events.events.filter((event) => event.kind === "task.succeeded").length === 2)
    const ids = events.events.filter((event) => event.kind === "task.succeeded").map((event) => event.taskId)
    expect(ids.sort()).toEqual([`billing-2:${right}:${rightJob.id}`, `bullmq-left:${left}:${leftJob.id}`].sort())

    expect(a.adapter.engine).toBe("bullmq")
    expect(b.adapter.engine).toBe("bullmq")
    const cancelRight = command("cancel_task", { task_id: `billing:${right}:1` })
    expect(b.adapter.handles!(cancelRight)).toBe(true)
    expect(a.adapter.handles!(cancelRight)).toBe(false)
    const cancelLeft = command("cancel_task", { task_id: `${left}:1` })
    expect(a.adapter.handles!(cancelLeft)).toBe(true)
    expect(b.adapter.handles!(cancelLeft)).toBe(false)
    const purge = command("purge_queue", { queue: right }, { type: "queue", id: right })
    expect(b.adapter.handles!(purge)).toBe(true)
    expect(a.adapter.handles!(purge)).toBe(false)
    void aWithWorker
    void bWithWorker
  })

  it("health reports depths and workers", async () => {
    const name = queueName("health")
    const queue = redis.queue(name)
    const worker = redis.worker(name, async () => "ok", { autorun: false, concurrency: 3 })
    const { adapter } = await redis.adapter(
      { queues: [queue], workers: [worker], queueEvents: false },
      memorySink().sink
    )
    await queue.add("a", {})
    await queue.add("b", {}, { delay: 60_000 })
    await queue.add("c", {}, { priority: 5 })
    const health = await Effect.runPromise(adapter.health!)
    expect(JSON.parse(health["bullmq.queue_depths"]!)).toEqual({ [name]: 3 })
    const details = JSON.parse(health["bullmq.worker_details"]!) as Record<string, Record<string, unknown>>
    const [host] = Object.values(details)
    expect(host).toMatchObject({ active_queues: [{ name }], stats: { pool: { "max-concurrency": 3 } } })
  })

  it("invalid options are rejected", async () => {
    const scope = Effect.runSync(Scope.make())
    const { make } = await import("../../src/engines/bullmq/BullMQ.js")
    const result = await Effect.runPromise(
      Effect.either(Scope.extend(make({ connection: redis.connection, queues: [] }), scope))
    )
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.message).toContain("name at least one queue")
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
})

describe("BullMQ discovery", () => {
  it("sidecar sees jobs of a worker it does not run", async () => {
    const first = queueName("found")
    const second = queueName("found")
    const client = redis.client()
    await redis.queue(first).add("warmup", {})
    await redis.queue(second).add("warmup", {})
    const queues = await Effect.runPromise(Discovery.discoverQueues(client))
    expect(queues).toEqual(expect.arrayContaining([first, second]))
    expect(await Effect.runPromise(Discovery.isAvailable)).toBe(true)

    const events = memorySink()
    const scope = Effect.runSync(Scope.make())
    try {
      const adapter = await Effect.runPromise(Scope.extend(Discovery.makeSidecar({ connection: client }), scope))
      await Effect.runPromise(Scope.extend(adapter.start(events.sink), scope))
      redis.worker(first, async () => "seen by the sidecar")
      const job = await redis.queue(first).add("remote", { from: "worker" })
      const taskId = `${first}:${job.id}`
      await waitUntil(() => events.of(taskId, "task.succeeded").length === 1, 8_000, "the sidecar's task.succeeded")
      expect(events.of(taskId, "task.received")[0]!.data.args).toEqual({ from: "worker" })
      expect(events.of(taskId, "task.succeeded")[0]!.data.result).toBe("seen by the sidecar")

      const result = await run(adapter, command("pause_queue", { queue: second }))
      expect(Either.getOrThrow(result)).toEqual({ queue: second, paused: true })
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("sidecar without queues fails", async () => {
    const scope = Effect.runSync(Scope.make())
    const result = await Effect.runPromise(
      Effect.either(Scope.extend(Discovery.makeSidecar({ connection: redis.client(), prefix: "empty-prefix" }), scope))
    )
    await Effect.runPromise(Scope.close(scope, Exit.void))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result))
      expect(result.left.message).toContain('No BullMQ queue found in Redis under prefix "empty-prefix"')
  })
})
