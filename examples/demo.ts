/**
 * The demo: a small Effect worker with the agent attached.
 *
 * With no flags it starts a local test brain on 127.0.0.1, runs tasks that succeed, fail, retry and
 * one that runs long; the brain then cancels the long one and retries the failed one by reference.
 * It prints what happened and exits 0 only if every step did.
 *
 * With `--brain-url URL --token T --hmac-secret S --project-id P` it talks to a real brain instead,
 * runs the same tasks, and waits for the brain to acknowledge every event (commands then come from
 * the brain's operators, so the demo does not issue any).
 */

import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import { Tasks } from "../src/engines/effect/index.js"
import * as Z4j from "../src/layers/Z4j.js"
import { Agent } from "../src/services/Agent.js"
import * as TestBrain from "../src/testing/TestBrain.js"

const { values: flags } = parseArgs({
  options: {
    "brain-url": { type: "string" },
    token: { type: "string" },
    "hmac-secret": { type: "string" },
    "project-id": { type: "string" },
    verbose: { type: "boolean", default: false }
  }
})

const realBrain = flags["brain-url"] !== undefined

class DemoFailure extends Error {}

const waitUntil = <A>(label: string, probe: Effect.Effect<A | undefined>, timeout = Duration.seconds(20)) =>
  probe.pipe(
    Effect.filterOrFail(
      (value): value is A => value !== undefined,
      () => new DemoFailure(label)
    ),
    Effect.retry(Schedule.spaced(Duration.millis(20))),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new DemoFailure(`timed out waiting: ${label}`) })
  )

class TransientError extends Error {}

const worker = (brain: TestBrain.TestBrainShape | undefined) =>
  Effect.gen(function* () {
    const agent = yield* Agent
    const tasks = yield* Tasks.Tasks
    const lines: Array<string> = []
    const check = (ok: boolean, line: string) => {
      lines.push(`${ok ? "ok  " : "FAIL"} ${line}`)
      return ok
    }

    let flakyAttempts = 0
    let brokenRuns = 0
    yield* tasks.register("demo.add", (args) => Effect.succeed(Number(args[0]) + Number(args[1])))
    yield* tasks.register("demo.broken", (args) =>
      Effect.suspend(() => {
        brokenRuns += 1
        // The first run fails; a retry from the brain succeeds, using the arguments kept in memory.
        return brokenRuns === 1
          ? Effect.fail(new Error(`no route to ${args[0]}`))
          : Effect.succeed(`sent to ${args[0]}`)
      })
    )
    yield* tasks.register("demo.long", () => Effect.as(Effect.sleep(Duration.minutes(10)), "finished"))

    // Tasks run as the worker's own code would: results, failures and retries all reported.
    for (const [a, b] of [
      [1, 2],
      [20, 22],
      [100, 1]
    ] as const) {
      yield* tasks.run("demo.add", Effect.succeed(a + b), { args: [a, b] })
    }
    yield* tasks.run(
      "demo.flaky",
      Effect.suspend(() => {
        flakyAttempts += 1
        return flakyAttempts < 3 ? Effect.fail(new TransientError("upstream busy")) : Effect.succeed("done")
      }),
      { args: ["job-7"], retry: Schedule.recurs(3) }
    )
    const broken = yield* tasks.submit("demo.broken", { args: ["mail.example.invalid"], queue: "mail" })
    yield* Effect.exit(broken.fiber.await)
    const long = yield* tasks.submit("demo.long", { args: [], queue: "reports" })
    yield* waitUntil(
      "the long task to start",
      Effect.map(tasks.running, (running) => (running.includes(long.taskId) ? true : undefined))
    )

    let allOk = true
    yield* waitUntil(
      "the agent to connect",
      Effect.map(agent.status, (status) => status.sessionId ?? undefined)
    )
    if (brain !== undefined) {
      const cancelId = brain.sendCommand({
        action: "cancel_task",
        target: { type: "task", id: `effect:${long.taskId}` },
        parameters: { engine: "effect", task_id: long.taskId }
      })
      // The brain's copy of the arguments is redacted; the agent retries from its own copy.
      const retryId = brain.sendCommand({
        action: "retry_task",
        target: { type: "task", id: `effect:${broken.taskId}` },
        parameters: { engine: "effect", task_id: broken.taskId, task_name: "demo.broken", args: ["[REDACTED]"] }
      })
      const cancel = yield* waitUntil(
        "the cancel result",
        Effect.sync(() => brain.commandResult(cancelId))
      )
      const retry = yield* waitUntil(
        "the retry result",
        Effect.sync(() => brain.commandResult(retryId))
      )
      allOk =
        check(
          cancel.status === "success",
          `cancel_task ${long.taskId}: ${cancel.status} ${JSON.stringify(cancel.result)}`
        ) && allOk
      allOk =
        check(
          retry.status === "success",
          `retry_task ${broken.taskId}: ${retry.status} ${JSON.stringify(retry.result)}`
        ) && allOk
      const retriedId = String(retry.result?.new_task_id)
      yield* waitUntil(
        "the retried task to succeed",
        Effect.sync(() => brain.events.find((event) => event.task_id === retriedId && event.kind === "task.succeeded"))
      ).pipe(Effect.catchAll(() => Effect.succeed(undefined)))
      allOk = check(brokenRuns === 2, `demo.broken ran again from its original arguments (${brokenRuns} runs)`) && allOk
      const revoked = brain.events.some((event) => event.task_id === long.taskId && event.kind === "task.revoked")
      yield* waitUntil(
        "the long task's revoked event",
        Effect.sync(() =>
          revoked
            ? true
            : brain.events.some((event) => event.task_id === long.taskId && event.kind === "task.revoked") || undefined
        )
      ).pipe(Effect.ignore)
    }

    yield* agent.flush
    const status = yield* waitUntil(
      "the brain to acknowledge every event",
      Effect.map(agent.status, (status) =>
        status.dispatcher.acceptedTotal > 0 &&
        status.dispatcher.ackedTotal === status.dispatcher.acceptedTotal &&
        status.buffer.depth === 0
          ? status
          : undefined
      )
    )
    allOk =
      check(
        status.droppedEvents === 0,
        `events sent ${status.dispatcher.acceptedTotal}, acknowledged ${status.dispatcher.ackedTotal}, dropped ${status.droppedEvents}`
      ) && allOk
    if (brain !== undefined) {
      const kinds = new Map<string, number>()
      for (const event of brain.events) kinds.set(event.kind, (kinds.get(event.kind) ?? 0) + 1)
      const wanted = ["task.received", "task.started", "task.succeeded", "task.failed", "task.retried", "task.revoked"]
      for (const kind of wanted)
        allOk = check((kinds.get(kind) ?? 0) > 0, `brain received ${kinds.get(kind) ?? 0} ${kind}`) && allOk
      allOk =
        check(
          brain.frames.some((frame) => frame.type === "heartbeat"),
          "brain received heartbeats"
        ) && allOk
    }
    return { allOk, lines }
  })

const main = Effect.gen(function* () {
  const brain = realBrain ? undefined : yield* Effect.promise(() => TestBrain.start())
  const home = mkdtempSync(join(tmpdir(), "z4j-demo-"))
  const options: Z4j.Options = brain
    ? { ...brain.agentOptions, home, agentName: "z4j-agent-demo", framework: "effect" }
    : {
        brainUrl: flags["brain-url"]!,
        token: flags.token ?? "",
        hmacSecret: flags["hmac-secret"] ?? "",
        projectId: flags["project-id"] ?? "",
        home,
        agentName: "z4j-agent-demo",
        framework: "effect"
      }
  console.log(brain ? `test brain listening on ${brain.url}` : `connecting to ${flags["brain-url"]}`)
  const layer = Tasks.layer({ queue: "demo" }).pipe(Layer.provideMerge(Z4j.layer(options)))
  const outcome = yield* Effect.scoped(worker(brain).pipe(Effect.provide(layer))).pipe(
    Effect.ensuring(
      Effect.promise(async () => {
        await brain?.stop()
        rmSync(home, { recursive: true, force: true })
      })
    ),
    Effect.either
  )
  if (outcome._tag === "Left") {
    console.error(`demo failed: ${outcome.left instanceof Error ? outcome.left.message : String(outcome.left)}`)
    return 1
  }
  for (const line of outcome.right.lines) console.log(line)
  if (brain) console.log(`goodbye close seen by the brain: ${JSON.stringify(brain.agentCloses[0] ?? null)}`)
  console.log(outcome.right.allOk ? "demo finished: every step happened" : "demo finished with failures")
  return outcome.right.allOk ? 0 : 1
})

Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(flags.verbose ? LogLevel.Debug : LogLevel.Warning))).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
