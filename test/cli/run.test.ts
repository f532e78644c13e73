import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Args from "../../src/cli/Args.js"
import * as Commands from "../../src/cli/commands.js"
import * as Run from "../../src/cli/runPlan.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { type RedisServer, startRedis } from "../support/redis.js"
import { baseEnvironment, cli, eventually, start } from "./support.js"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "z4j-run-test-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))
const environment = baseEnvironment(home)
const fixtures = path.join(import.meta.dirname, "fixtures")

const plan = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Either.flatMap(Args.parse(Commands.run, argv), (parsed) => Run.planFrom(parsed, env))

describe("Run.planFrom", () => {
  it("needs an engine or a module", () => {
    const result = plan([])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("nothing to run")
  })

  it("rejects unknown engines", () => {
    const result = plan(["--engine", "kafka"])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("the engine the CLI can watch is bullmq")
  })

  it("bullmq needs a Redis URL", () => {
    const result = plan(["--engine", "bullmq"])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("--redis URL")
  })

  it("redis flags need the engine", () => {
    const result = plan(["worker.js", "--queues", "a"])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("--queues needs --engine bullmq")
  })

  it("reads queues and the environment", () => {
    const result = Either.getOrThrow(
      plan(["--engine", "bullmq", "--queues", "emails, reports,", "--token", "t"], {
        Z4J_REDIS_URL: "redis://127.0.0.1:6390"
      })
    )
    expect(result.bullmq).toEqual({
      redisUrl: "redis://127.0.0.1:6390",
      prefix: "bull",
      queues: ["emails", "reports"],
      discoverIntervalSeconds: 30
    })
    expect(result.options).toEqual({ token: "t" })
  })

  it("reads the discovery interval", () => {
    const fromFlag = Either.getOrThrow(plan(["--engine", "bullmq", "--redis", "redis://x", "--discover-interval", "0"]))
    expect(fromFlag.bullmq?.discoverIntervalSeconds).toBe(0)
    const fromEnvironment = Either.getOrThrow(
      plan(["--engine", "bullmq", "--redis", "redis://x"], { Z4J_DISCOVER_INTERVAL_SECONDS: "5" })
    )
    expect(fromEnvironment.bullmq?.discoverIntervalSeconds).toBe(5)
    const flagWins = Either.getOrThrow(
      plan(["--engine", "bullmq", "--redis", "redis://x", "--discover-interval", "2"], {
        Z4J_DISCOVER_INTERVAL_SECONDS: "5"
      })
    )
    expect(flagWins.bullmq?.discoverIntervalSeconds).toBe(2)
  })

  it("rejects an invalid discovery interval", () => {
    for (const value of ["-1", "1.5", "soon", "86401"]) {
      const result = plan(["--engine", "bullmq", "--redis", "redis://x", `--discover-interval=${value}`])
      expect(Either.isLeft(result)).toBe(true)
      expect(Either.isLeft(result) ? result.left.message : "").toContain("whole number of seconds")
    }
  })

  it("discovery interval needs the engine", () => {
    const result = plan(["worker.js", "--discover-interval", "1"])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("--discover-interval needs --engine bullmq")
  })
})

describe("z4j-agent run", () => {
  let brain: TestBrain.TestBrainShape
  beforeAll(async () => {
    brain = await TestBrain.start()
  })
  afterAll(() => brain?.stop())

  const agentEnvironment = () => ({
    ...environment,
    Z4J_BRAIN_URL: brain.url,
    Z4J_TOKEN: brain.token,
    Z4J_PROJECT_ID: brain.projectId,
    Z4J_HMAC_SECRET: brain.hmacSecret,
    Z4J_HOME: path.join(home, "agent")
  })

  it("usage error exits 2", async () => {
    const outcome = await cli(["run"], environment)
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain("nothing to run")
  })

  it("worker module reports, SIGHUP reconnects, SIGTERM stops cleanly", async () => {
    const marker = path.join(home, "marker")
    const running = start(
      ["run", path.join(fixtures, "worker.mjs")],
      { ...agentEnvironment(), FIXTURE_MARKER: marker },
      {
        direct: true
      }
    )
    await eventually(() => brain.events.some((event) => event.task_id === "fixture-1"))
    const hellos = brain.hellos.length

    // A refused token puts the agent in the auth backoff, which waits at least 10 s, so a reconnect
    // within the 5 s below can only come from SIGHUP.
    brain.faults.refuseAuth = true
    brain.dropAll()
    await eventually(() => running.stderr().includes("4401"))
    brain.faults.refuseAuth = false
    const refusedHellos = brain.hellos.length
    running.child.kill("SIGHUP")
    await eventually(
      () => brain.hellos.length > Math.max(hellos, refusedHellos) && brain.connectedSessions() > 0,
      5_000
    )

    running.child.kill("SIGTERM")
    const outcome = await running.done
    expect(outcome.code).toBe(0)
    expect(fs.readFileSync(marker, "utf8")).toBe("stopped after abort")
    expect(outcome.stderr).toContain("SIGHUP: reconnecting now")
    expect(outcome.stderr).toContain("SIGTERM: flushing the buffer and disconnecting")
    // Logs go to stderr once, not again on stdout.
    expect(outcome.stdout).not.toContain("SIGTERM: flushing the buffer and disconnecting")
    await eventually(() => brain.agentCloses.some((close) => close.code === 1000), 5_000)
    expect(outcome.stdout + outcome.stderr).not.toContain(brain.token)
    expect(outcome.stdout + outcome.stderr).not.toContain(brain.hmacSecret)
  })

  it("bullmq sidecar reports queued jobs", async () => {
    const { Queue } = await import("bullmq")
    const redis: RedisServer = await startRedis()
    const queue = new Queue("emails", { connection: { host: redis.host, port: redis.port } })
    try {
      await queue.add("welcome", { to: "a@example.com" })
      const running = start(["run", "--engine", "bullmq", "--redis", redis.url], agentEnvironment(), { direct: true })
      await eventually(() => brain.hellos.some((hello) => JSON.stringify(hello).includes('"bullmq"')))
      await queue.add("receipt", { to: "b@example.com" })
      await eventually(() => brain.events.some((event) => event.engine === "bullmq"))
      running.child.kill("SIGTERM")
      const outcome = await running.done
      expect(outcome.code).toBe(0)
      expect(outcome.stderr).toContain("watching BullMQ queues")
    } finally {
      await queue.close()
      await redis.stop()
    }
  })

  it("sidecar follows queues created later", async () => {
    const { Queue } = await import("bullmq")
    const redis: RedisServer = await startRedis()
    const connection = { host: redis.host, port: redis.port }
    const queues: Array<{ readonly close: () => Promise<void> }> = []
    try {
      const hellosBefore = brain.hellos.length
      const running = start(
        ["run", "--engine", "bullmq", "--redis", redis.url, "--discover-interval", "1"],
        agentEnvironment(),
        { direct: true }
      )
      await eventually(() => running.stderr().includes("no BullMQ queue found in Redis yet"))
      await eventually(() => brain.hellos.length > hellosBefore)
      expect(JSON.stringify(brain.hellos[hellosBefore])).not.toContain('"bullmq"')
      expect(running.child.exitCode).toBeNull()

      // The job is added before the next scan finds its queue, so only reading the new queue's event
      // stream from its start reports it.
      const emails = new Queue("emails", { connection })
      queues.push(emails)
      await emails.add("welcome", { to: "a@example.com" })
      await eventually(() => brain.events.some((event) => event.engine === "bullmq" && event.task_id === "emails:1"))
      await eventually(() =>
        brain.hellos.slice(hellosBefore).some((hello) => JSON.stringify(hello).includes('"bullmq"'))
      )

      const reports = new Queue("reports", { connection })
      queues.push(reports)
      await reports.add("monthly", { month: "2026-11" })
      await eventually(() => brain.events.some((event) => event.task_id === "reports:1"))
      await emails.add("receipt", { to: "b@example.com" })
      await eventually(() => brain.events.some((event) => event.task_id === "emails:2"))

      running.child.kill("SIGTERM")
      const outcome = await running.done
      expect(outcome.code).toBe(0)
      expect(outcome.stderr).toContain(`redis=${redis.url}`)
      expect(outcome.stderr).toMatch(/watching new BullMQ queues.*added=emails/)
      expect(outcome.stderr).toMatch(/watching new BullMQ queues.*added=reports/)
      expect(outcome.stderr).toContain("reconnecting so that the brain receives the new list of engines")
    } finally {
      for (const queue of queues) await queue.close()
      await redis.stop()
    }
  })

  it("sidecar with interval 0 exits 1", async () => {
    const redis: RedisServer = await startRedis()
    try {
      const outcome = await cli(
        ["run", "--engine", "bullmq", "--redis", redis.url, "--discover-interval", "0"],
        agentEnvironment()
      )
      expect(outcome.code).toBe(1)
      expect(outcome.stderr).toContain("No BullMQ queue found in Redis under prefix")
      expect(outcome.stderr).toContain("--discover-interval above 0")
    } finally {
      await redis.stop()
    }
  })

  it("unusable export exits 1 and names it", async () => {
    const outcome = await cli(["run", path.join(fixtures, "not-a-worker.mjs")], agentEnvironment())
    expect(outcome.code).toBe(1)
    expect(outcome.stderr).toContain("default export is a number")
  })

  it("invalid config exits 1 naming the variable", async () => {
    const { Z4J_TOKEN: _token, ...withoutToken } = agentEnvironment()
    const outcome = await cli(["run", path.join(fixtures, "worker.mjs")], withoutToken)
    expect(outcome.code).toBe(1)
    expect(outcome.stderr).toContain("Z4J_TOKEN")
    expect(outcome.stderr).not.toContain(brain.hmacSecret)
  })
})
