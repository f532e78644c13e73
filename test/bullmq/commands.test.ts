import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as BullMQ from "../../src/engines/bullmq/BullMQ.js"
import { command, memorySink, queueName, redisFixture, run, sleep, waitUntil } from "./support.js"

const redis = redisFixture()
beforeAll(redis.start)
afterEach(redis.cleanup)
afterAll(redis.stop)

const started = async (queues: Array<string>, extra: Partial<BullMQ.Options> = {}) => {
  const events = memorySink()
  const { adapter } = await redis.adapter({ queues, queueEvents: false, ...extra }, events.sink)
  return { adapter, events }
}

const failedJob = async (name: string, data: Record<string, unknown>) => {
  const queue = redis.queue(name)
  const worker = redis.worker<unknown, unknown>(name, async () => {
    throw new Error("planned failure")
  })
  const job = await queue.add("flaky", data)
  await waitUntil(async () => (await queue.getJobState(String(job.id))) === "failed", 5_000, "the job to fail")
  await worker.close()
  return { queue, job }
}

describe("BullMQ commands", () => {
  it("retry_task retries from the stored data", async () => {
    const name = queueName("retry")
    const { adapter } = await started([name])
    const { queue, job } = await failedJob(name, { secret: "kept in redis" })

    const result = await run(
      adapter,
      command(
        "retry_task",
        { task_id: `${name}:${job.id}`, args: ["[REDACTED]"], kwargs: {} },
        {
          type: "task",
          id: `bullmq:${name}:${job.id}`
        }
      )
    )
    expect(Either.isRight(result)).toBe(true)
    expect(Either.getOrThrow(result)).toMatchObject({ action: "retried", previous_state: "failed" })
    expect(await queue.getJobState(String(job.id))).toBe("waiting")
    expect((await queue.getJob(String(job.id)))!.data).toEqual({ secret: "kept in redis" })
  })

  it("retry_task by target id only", async () => {
    const name = queueName("retry-target")
    const { adapter } = await started([name])
    const { queue, job } = await failedJob(name, { n: 1 })
    const result = await run(adapter, command("retry_task", {}, { type: "task", id: `bullmq:${name}:${job.id}` }))
    expect(Either.isRight(result)).toBe(true)
    expect(await queue.getJobState(String(job.id))).toBe("waiting")
  })

  it("retry_task rejects a waiting job", async () => {
    const name = queueName("retry-waiting")
    const { adapter } = await started([name])
    const job = await redis.queue(name).add("idle", {})
    const result = await run(adapter, command("retry_task", { task_id: `${name}:${job.id}` }))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("is waiting")
  })

  it("retry_task of a missing job", async () => {
    const name = queueName("retry-missing")
    const { adapter } = await started([name])
    const result = await run(adapter, command("retry_task", { task_id: `${name}:404` }))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("was not found")
  })

  it("cancel_task removes waiting and delayed jobs", async () => {
    const name = queueName("cancel")
    const events = memorySink()
    const { adapter } = await redis.adapter({ queues: [name], queueEvents: false }, events.sink)
    const queue = redis.queue(name)
    const waiting = await queue.add("w", {})
    const delayed = await queue.add("d", {}, { delay: 60_000 })
    for (const job of [waiting, delayed]) {
      const result = await run(adapter, command("cancel_task", { task_id: `${name}:${job.id}` }))
      expect(Either.getOrThrow(result)).toMatchObject({ outcome: "removed" })
      expect(await queue.getJob(String(job.id))).toBeUndefined()
    }
    expect(events.of(`${name}:${waiting.id}`, "task.revoked")).toHaveLength(1)
    expect(events.of(`${name}:${delayed.id}`, "task.revoked")[0]!.data.previous_state).toBe("delayed")
  })

  it("cancel_task aborts an active job of a local worker", async () => {
    const name = queueName("cancel-local")
    const queue = redis.queue(name)
    let signalled = false
    const worker = redis.worker<unknown, unknown>(
      name,
      async (_job, _token, signal) => {
        await new Promise<void>((_, reject) => {
          signal?.addEventListener("abort", () => {
            signalled = true
            reject(new Error("aborted by signal"))
          })
        })
      },
      { autorun: false }
    )
    const { adapter } = await started([name], { workers: [worker] })
    void worker.run()
    const job = await queue.add("long", {}, { attempts: 1 })
    await waitUntil(async () => (await queue.getJobState(String(job.id))) === "active", 5_000, "the job to start")

    const result = await run(adapter, command("cancel_task", { task_id: `${name}:${job.id}` }))
    expect(Either.getOrThrow(result)).toMatchObject({ outcome: "aborted", state: "failed" })
    expect(signalled).toBe(true)
  })

  it("cancel_task moves a remote active job to failed", async () => {
    const name = queueName("cancel-remote")
    const queue = redis.queue(name)
    redis.worker(name, () => new Promise(() => undefined), { lockDuration: 5_000 })
    const { adapter } = await started([name])
    const job = await queue.add("long", {}, { attempts: 3 })
    await waitUntil(async () => (await queue.getJobState(String(job.id))) === "active", 5_000, "the job to start")

    const result = await run(adapter, command("cancel_task", { task_id: `${name}:${job.id}` }))
    expect(Either.getOrThrow(result)).toMatchObject({ outcome: "moved_to_failed" })
    expect(await queue.getJobState(String(job.id))).toBe("failed")
    const failed = await queue.getJob(String(job.id))
    expect(failed!.failedReason).toContain("cancelled by operator")
  })

  it("cancel_task of a completed job fails", async () => {
    const name = queueName("cancel-done")
    const queue = redis.queue(name)
    redis.worker(name, async () => "ok")
    const { adapter } = await started([name])
    const job = await queue.add("quick", {})
    await waitUntil(async () => (await queue.getJobState(String(job.id))) === "completed", 5_000, "the job to complete")
    const result = await run(adapter, command("cancel_task", { task_id: `${name}:${job.id}` }))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("already completed")
  })

  it("bulk_retry by state and by ids", async () => {
    const name = queueName("bulk")
    const queue = redis.queue(name)
    const worker = redis.worker<unknown, unknown>(name, async () => {
      throw new Error("planned failure")
    })
    const jobs = await Promise.all([1, 2, 3, 4].map((n) => queue.add(n === 4 ? "other" : "flaky", { n })))
    await waitUntil(async () => (await queue.getFailedCount()) === 4, 5_000, "four failed jobs")
    await worker.close()
    const { adapter } = await started([name])

    const byIds = await run(
      adapter,
      command(
        "bulk_retry",
        { filter: { task_ids: [`${name}:${jobs[0]!.id}`, `${name}:missing`] }, max: 10 },
        {
          type: "bulk",
          id: null
        }
      )
    )
    expect(Either.getOrThrow(byIds)).toMatchObject({ retried: 1, not_found: 1 })
    expect(await queue.getFailedCount()).toBe(3)

    const byState = await run(
      adapter,
      command("bulk_retry", { filter: { state: "failed", queue: name, name: "flaky" }, max: 10_000 })
    )
    expect(Either.getOrThrow(byState)).toMatchObject({ retried: 2, skipped: 1 })
    expect(await queue.getFailedCount()).toBe(1)

    const capped = await run(adapter, command("bulk_retry", { filter: { queue: name }, max: 50_000 }))
    expect(Either.getOrThrow(capped)).toMatchObject({ retried: 1, max: 10_000 })
    expect(await queue.getFailedCount()).toBe(0)
  })

  it("purge_queue needs a confirmation", async () => {
    const name = queueName("purge")
    const queue = redis.queue(name)
    const { adapter } = await started([name])
    await queue.add("a", {})
    await queue.add("b", {})
    await queue.add("c", {}, { delay: 60_000 })

    const refused = await run(
      adapter,
      command("purge_queue", { queue: name, confirm_token: `${name}:2`, force: false })
    )
    expect(Either.isLeft(refused)).toBe(true)
    if (Either.isLeft(refused)) expect(refused.left.reason).toContain("current depth 3")
    expect(await queue.count()).toBe(3)

    const confirmed = await run(
      adapter,
      command("purge_queue", { queue: name, confirm_token: BullMQ.purgeToken(name, 3) }, { type: "queue", id: name })
    )
    expect(Either.getOrThrow(confirmed)).toEqual({ queue: name, mode: "drain", depth_before: 3, depth_after: 0 })
    expect(await queue.count()).toBe(0)

    await queue.add("d", {})
    const forced = await run(adapter, command("purge_queue", { queue: name, force: true }))
    expect(Either.getOrThrow(forced)).toMatchObject({ depth_before: 1, depth_after: 0 })
  })

  it("submit_task adds a job", async () => {
    const name = queueName("submit")
    const queue = redis.queue(name)
    const { adapter } = await started([name])
    const result = await run(
      adapter,
      command("submit_task", {
        name: "send",
        args: [{ to: "ops" }],
        kwargs: {},
        queue: name,
        eta: 30,
        priority: "high"
      })
    )
    const value = Either.getOrThrow(result) as { job_id: string; task_id: string }
    expect(value.task_id).toBe(`${name}:${value.job_id}`)
    const job = await queue.getJob(value.job_id)
    expect(job!.name).toBe("send")
    expect(job!.data).toEqual({ to: "ops" })
    expect(job!.opts.delay).toBe(30_000)
    expect(job!.opts.priority).toBe(10)
    expect(await queue.getJobState(value.job_id)).toBe("delayed")
  })

  it("rate_limit sets and clears the queue limit", async () => {
    const name = queueName("rate")
    const queue = redis.queue(name)
    const { adapter } = await started([name])
    const set = await run(
      adapter,
      command("rate_limit", { task_name: "send", rate: "10/m", worker_name: null, queue: name })
    )
    expect(Either.getOrThrow(set)).toMatchObject({ queues: [name], limit: { max: 10, duration_ms: 60_000 } })
    const meta = await redis.client().hgetall(`bull:${name}:meta`)
    expect(meta).toMatchObject({ max: "10", duration: "60000" })

    const cleared = await run(adapter, command("rate_limit", { task_name: "send", rate: "0", queue: name }))
    expect(Either.getOrThrow(cleared)).toMatchObject({ limit: null })
    const after = await redis.client().hgetall(`bull:${name}:meta`)
    expect(after.max).toBeUndefined()

    const invalid = await run(adapter, command("rate_limit", { rate: "fast", queue: name }))
    expect(Either.isLeft(invalid)).toBe(true)
    void queue
  })

  it("pause_queue and resume_queue", async () => {
    const name = queueName("pause")
    const queue = redis.queue(name)
    const { adapter } = await started([name])
    expect(Either.getOrThrow(await run(adapter, command("pause_queue", { queue: name })))).toEqual({
      queue: name,
      paused: true
    })
    expect(await queue.isPaused()).toBe(true)
    expect(Either.getOrThrow(await run(adapter, command("resume_queue", {}, { type: "queue", id: name })))).toEqual({
      queue: name,
      paused: false
    })
    expect(await queue.isPaused()).toBe(false)
  })

  it("reconcile_task reports engine states", async () => {
    const name = queueName("reconcile")
    const queue = redis.queue(name)
    const { adapter } = await started([name])
    const pending = await queue.add("p", {}, { delay: 60_000 })
    const { job: failed } = await failedJob(name, {})
    const reconcile = (id: string) => run(adapter, command("reconcile_task", { task_id: id }, { type: "task", id }))

    expect(Either.getOrThrow(await reconcile(`${name}:${pending.id}`))).toEqual({
      task_id: `${name}:${pending.id}`,
      engine_state: "pending",
      finished_at: null,
      exception: null
    })
    const failure = Either.getOrThrow(await reconcile(`${name}:${failed.id}`)) as Record<string, unknown>
    expect(failure.engine_state).toBe("failure")
    expect(failure.exception).toBe("planned failure")
    expect(typeof failure.finished_at).toBe("string")
    expect(Either.getOrThrow(await reconcile(`${name}:999`))).toMatchObject({ engine_state: "unknown" })
  })

  it("requeue_dead_letter retries a failed job", async () => {
    const name = queueName("dlq")
    const { adapter } = await started([name])
    const { queue, job } = await failedJob(name, {})
    const result = await run(adapter, command("requeue_dead_letter", { task_id: `${name}:${job.id}` }))
    expect(Either.getOrThrow(result)).toMatchObject({ requeued: true })
    expect(await queue.getJobState(String(job.id))).toBe("waiting")
  })

  it("unknown action fails with the list", async () => {
    const name = queueName("unknown")
    const { adapter } = await started([name])
    const result = await run(adapter, command("restart_worker", {}))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("does not execute")
    await sleep(0)
  })
})
