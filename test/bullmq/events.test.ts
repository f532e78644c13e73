import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Job } from "bullmq"
import { memorySink, queueName, redisFixture, sleep, waitUntil } from "./support.js"

const redis = redisFixture()
beforeAll(redis.start)
afterEach(redis.cleanup)
afterAll(redis.stop)

describe("BullMQ events", () => {
  it("successful job with a local worker", async () => {
    const name = queueName("ok")
    const { sink, of, registry } = memorySink()
    const queue = redis.queue(name)
    const worker = redis.worker(name, async (job) => ({ doubled: (job.data as { n: number }).n * 2 }), {
      autorun: false
    })
    await redis.adapter({ queues: [queue], workers: [worker] }, sink)
    void worker.run()

    const job = await queue.add("double", { n: 21 }, { attempts: 2 })
    const taskId = `${name}:${job.id}`
    await waitUntil(() => of(taskId, "task.succeeded").length === 1, 8_000, "task.succeeded")
    await sleep(300)

    expect(of(taskId, "task.received")).toHaveLength(1)
    expect(of(taskId, "task.started")).toHaveLength(1)
    expect(of(taskId, "task.succeeded")).toHaveLength(1)
    const received = of(taskId, "task.received")[0]!
    expect(received.engine).toBe("bullmq")
    expect(received.data.task_name).toBe("double")
    expect(received.data.queue).toBe(name)
    expect(received.data.args).toEqual({ n: 21 })
    expect(received.data.kwargs).toEqual({ attempts: 2 })
    const started = of(taskId, "task.started")[0]!
    expect(typeof started.data.worker).toBe("string")
    const succeeded = of(taskId, "task.succeeded")[0]!
    expect(succeeded.data.result).toEqual({ doubled: 42 })
    expect(typeof succeeded.data.runtime_ms).toBe("number")
    expect(succeeded.occurredAt).toBeInstanceOf(Date)
    expect(registry.flatMap((delta) => delta.added.map((entry) => entry.name))).toEqual(["double"])
  })

  it("failure with retries then final failure", async () => {
    const name = queueName("fail")
    const { sink, of } = memorySink()
    const queue = redis.queue(name)
    const worker = redis.worker<unknown, unknown>(
      name,
      async () => {
        throw new Error("boom from the processor")
      },
      { autorun: false }
    )
    await redis.adapter({ queues: [queue], workers: [worker] }, sink)
    void worker.run()

    const job = await queue.add("explode", { id: 1 }, { attempts: 3 })
    const taskId = `${name}:${job.id}`
    await waitUntil(() => of(taskId, "task.failed").length === 1, 8_000, "task.failed")
    await sleep(300)

    expect(of(taskId, "task.started")).toHaveLength(3)
    const retried = of(taskId, "task.retried")
    expect(retried).toHaveLength(2)
    expect(retried.map((event) => event.data.retry_count)).toEqual([1, 2])
    expect(retried[0]!.data.exception).toBe("boom from the processor")
    const failed = of(taskId, "task.failed")
    expect(failed).toHaveLength(1)
    expect(failed[0]!.data.exception).toBe("boom from the processor")
    expect(String(failed[0]!.data.traceback)).toContain("boom from the processor")
    expect(failed[0]!.data.attempts_made).toBe(3)
  })

  it("jobs of a worker in another process via QueueEvents", async () => {
    const name = queueName("remote")
    const { sink, of } = memorySink()
    const queue = redis.queue(name)
    await redis.adapter({ queues: [name] }, sink)
    redis.worker(name, async (job) => {
      if ((job.data as { fail: boolean }).fail && job.attemptsMade === 0) throw new Error("first attempt fails")
      await job.updateProgress(50)
      return "done"
    })

    const ok = await queue.add("work", { fail: false })
    const flaky = await queue.add("work", { fail: true }, { attempts: 2 })
    const okId = `${name}:${ok.id}`
    const flakyId = `${name}:${flaky.id}`
    await waitUntil(
      () => of(okId, "task.succeeded").length === 1 && of(flakyId, "task.succeeded").length === 1,
      8_000,
      "both jobs succeeded"
    )
    await sleep(300)

    expect(of(okId, "task.received")).toHaveLength(1)
    expect(of(okId, "task.received")[0]!.data.args).toEqual({ fail: false })
    const okStarted = of(okId, "task.started")
    expect(okStarted.filter((event) => event.data.progress === undefined)).toHaveLength(1)
    expect(okStarted.filter((event) => event.data.progress === 50)).toHaveLength(1)
    expect(of(okId, "task.succeeded")[0]!.data.result).toBe("done")
    expect(of(flakyId, "task.retried")).toHaveLength(1)
    expect(of(flakyId, "task.retried")[0]!.data.exception).toBe("first attempt fails")
    expect(of(flakyId, "task.failed")).toHaveLength(0)
  })

  it("final failure via QueueEvents", async () => {
    const name = queueName("remote-fail")
    const { sink, of } = memorySink()
    const queue = redis.queue(name)
    await redis.adapter({ queues: [name] }, sink)
    redis.worker(name, async () => {
      throw new Error("always fails")
    })
    const job = await queue.add("bad", {}, { attempts: 2 })
    const taskId = `${name}:${job.id}`
    await waitUntil(() => of(taskId, "task.failed").length === 1, 8_000, "task.failed")
    await sleep(200)
    expect(of(taskId, "task.retried")).toHaveLength(1)
    expect(of(taskId, "task.failed")[0]!.data.exception).toBe("always fails")
    expect(of(taskId, "task.failed")).toHaveLength(1)
  })

  it("removed job is revoked", async () => {
    const name = queueName("removed")
    const { sink, of } = memorySink()
    const queue = redis.queue(name)
    await redis.adapter({ queues: [name] }, sink)
    const job = await queue.add("later", { x: 1 }, { delay: 60_000 })
    const taskId = `${name}:${job.id}`
    await waitUntil(() => of(taskId, "task.received").length === 1, 5_000, "task.received")
    await queue.remove(String(job.id))
    await waitUntil(() => of(taskId, "task.revoked").length === 1, 5_000, "task.revoked")
    expect(of(taskId, "task.revoked")[0]!.data.reason).toBe("removed")
    expect(of(taskId, "task.revoked")[0]!.data.previous_state).toBe("delayed")
  })

  it("stalled job after its worker dies", async () => {
    const name = queueName("stalled")
    const { sink, of } = memorySink()
    const queue = redis.queue(name)
    await redis.adapter({ queues: [name] }, sink)
    let started = false
    const dying = redis.worker(
      name,
      async () => {
        started = true
        await new Promise(() => undefined)
      },
      { lockDuration: 400, stalledInterval: 200 }
    )
    const job = await queue.add("hang", {})
    const taskId = `${name}:${job.id}`
    await waitUntil(() => started, 5_000, "the first worker to take the job")
    // Closing with force stops lock renewal without finishing the job, as a killed process would.
    await dying.close(true)
    // BullMQ runs one stall check per stalledInterval across all workers, so the second worker uses the same interval.
    redis.worker(name, async () => "recovered", { lockDuration: 400, stalledInterval: 200 })

    await waitUntil(() => of(taskId, "task.succeeded").length === 1, 10_000, "task.succeeded after the stall")
    const stalled = of(taskId, "task.retried").filter((event) => event.data.stalled === true)
    expect(stalled.length).toBeGreaterThanOrEqual(1)
    expect(of(taskId, "task.started").length).toBeGreaterThanOrEqual(2)
  })

  it("listener errors never reach BullMQ", async () => {
    const name = queueName("throwing")
    const queue = redis.queue(name)
    const worker = redis.worker(name, async () => "ok", { autorun: false })
    let calls = 0
    await redis.adapter(
      { queues: [queue], workers: [worker] },
      {
        emit: () => {
          calls++
          throw new Error("sink failure")
        },
        registry: () => {
          throw new Error("registry failure")
        }
      }
    )
    void worker.run()
    const job = await queue.add("survives", {})
    await waitUntil(
      async () => (await Job.fromId(queue, String(job.id)))?.finishedOn !== undefined,
      5_000,
      "the job to finish"
    )
    expect(await queue.getJobState(String(job.id))).toBe("completed")
    expect(calls).toBeGreaterThanOrEqual(3)
  })
})
